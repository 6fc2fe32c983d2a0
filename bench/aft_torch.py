#!/usr/bin/python3
# bench/aft_torch.py: the peer of bench/bench_aft_cuda.cpp: the AFT operators written in PyTorch
# as the paper's formulas (Zhai et al. 2021), timed eagerly and under torch.compile, at the same
# sizes and by the same method (warm-up, then the median of --reps forward + backward runs, each
# between torch.cuda.synchronize() calls; peak memory = torch.cuda.max_memory_allocated during the
# runs above what was allocated before: the inputs and the upstream gradient).
#
#   AFT-full    Y = σ(Q) ⊙ (exp(W) @ (exp(K) ⊙ V)) / (exp(W) @ exp(K))     (causal: W masked to t' <= t)
#   AFT-local   AFT-full with W = the band (|t - t'| < window), 0 outside: a T×T matrix
#   AFT-simple  Y = σ(Q) ⊙ Σ_t softmax_t(K) ⊙ V                             (causal: cumulative sums)
#   AFT-conv    Y = σ(Q) ⊙ (conv(exp(K)⊙V, exp(w) - 1) + Σ exp(K)⊙V) / (conv(exp(K), exp(w) - 1) + Σ exp(K))
# exp(W), exp(K) are taken after subtracting the maxima (row max of W, max over t of K), as the
# public PyTorch ports do; the ratio is unchanged.
#
# Sizes: B = 8, D = 512, T in {256, 1024, 4096}; aft_local windows 32, 256; aft_conv 14×14 and
# 56×56, C = 512, 8 heads, s in {3, 7}. CUDA only (prints a message and exits otherwise);
# --check runs a tiny correctness check of the formulas against the definition on the CPU.
#   /usr/bin/python3 bench/aft_torch.py [--reps 5] [--no-compile] [--tiny] [--check]
import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- the formulas

def band_to_full(w_band, window):
    """[T, 2W - 1] band (column j: t' - t = j - (W - 1)) -> [T, T], 0 outside the band."""
    T = w_band.shape[0]
    t = torch.arange(T, device=w_band.device)
    tp = t[:, None] + torch.arange(2 * window - 1, device=w_band.device)[None, :] - (window - 1)
    ok = (tp >= 0) & (tp < T)
    full = torch.zeros(T, T, dtype=w_band.dtype, device=w_band.device)
    rows = t[:, None].expand_as(tp)
    # index_put with accumulate=False is differentiable w.r.t. the values
    return full.index_put((rows[ok], tp[ok]), w_band[ok])


def aft_full(q, k, v, w, causal):
    if causal:
        T = w.shape[0]
        w = w.masked_fill(torch.ones(T, T, dtype=torch.bool, device=w.device).triu(1), float("-inf"))
    ew = torch.exp(w - w.max(dim=1, keepdim=True).values)       # [T, T]
    ek = torch.exp(k - k.max(dim=1, keepdim=True).values)       # [B, T, D]
    num = torch.einsum("ij,bjd->bid", ew, ek * v)
    den = torch.einsum("ij,bjd->bid", ew, ek)
    return torch.sigmoid(q) * num / den


def aft_local(q, k, v, w_band, window):
    return aft_full(q, k, v, band_to_full(w_band, window), False)


def aft_simple(q, k, v, causal):
    if not causal:
        return torch.sigmoid(q) * (torch.softmax(k, dim=1) * v).sum(dim=1, keepdim=True)
    ek = torch.exp(k - k.max(dim=1, keepdim=True).values)
    return torch.sigmoid(q) * torch.cumsum(ek * v, dim=1) / torch.cumsum(ek, dim=1)


def aft_conv(q, k, v, w, heads):
    """q, v [B, H, W, C], k [B, H, W, heads], w [heads, s, s] (channels last, as in aft)."""
    B, H, Wd, C = q.shape
    s = w.shape[-1]
    ek = torch.exp(k - k.amax(dim=(1, 2), keepdim=True))        # per (image, head)
    ekc = ek.repeat_interleave(C // heads, dim=3)                 # the head's key for each channel
    ekv = (ekc * v).permute(0, 3, 1, 2)                           # [B, C, H, W]
    kern = (torch.exp(w) - 1).unsqueeze(1)                        # [heads, 1, s, s]
    num = F.conv2d(ekv, kern.repeat_interleave(C // heads, dim=0), padding=s // 2, groups=C)
    den = F.conv2d(ek.permute(0, 3, 1, 2), kern, padding=s // 2, groups=heads)
    num = num + ekv.sum(dim=(2, 3), keepdim=True)
    den = (den + ek.permute(0, 3, 1, 2).sum(dim=(2, 3), keepdim=True)).repeat_interleave(C // heads, dim=1)
    return torch.sigmoid(q) * (num / den).permute(0, 2, 3, 1)


# ---------------------------------------------------------------- the definition (for --check)

def reference(q, k, v, wfull):
    """y[t] = σ(q[t]) Σ_t' softmax_t'(k[t'] + w'[t, t']) v[t'], w' [T, T] (-inf: unseen)."""
    a = torch.softmax(k[:, None, :, :] + wfull[None, :, :, None], dim=2)  # [B, T, T', D]
    return torch.sigmoid(q) * (a * v[:, None, :, :]).sum(dim=2)


def check():
    torch.manual_seed(0)
    B, T, D, W = 2, 12, 3, 3
    q, k, v = (torch.randn(B, T, D, dtype=torch.float64) for _ in range(3))
    w = torch.randn(T, T, dtype=torch.float64)
    tri = torch.ones(T, T, dtype=torch.bool).triu(1)
    wb = torch.randn(T, 2 * W - 1, dtype=torch.float64)
    cases = {
        "aft_full": (aft_full(q, k, v, w, False), reference(q, k, v, w)),
        "aft_full causal": (aft_full(q, k, v, w, True), reference(q, k, v, w.masked_fill(tri, float("-inf")))),
        "aft_local": (aft_local(q, k, v, wb, W), reference(q, k, v, band_to_full(wb, W))),
        "aft_simple": (aft_simple(q, k, v, False), reference(q, k, v, torch.zeros(T, T, dtype=torch.float64))),
        "aft_simple causal": (aft_simple(q, k, v, True),
                              reference(q, k, v, torch.zeros(T, T, dtype=torch.float64).masked_fill(tri, float("-inf")))),
    }
    # conv: pixels as a sequence, w' from the window offsets, k shared by the head's channels.
    H, Wd, C, heads, s = 4, 5, 4, 2, 3
    qc, vc = torch.randn(B, H, Wd, C, dtype=torch.float64), torch.randn(B, H, Wd, C, dtype=torch.float64)
    kc, wc = torch.randn(B, H, Wd, heads, dtype=torch.float64), torch.randn(heads, s, s, dtype=torch.float64)
    y = aft_conv(qc, kc, vc, wc, heads)
    ys = []
    for h in range(heads):
        wf = torch.zeros(H * Wd, H * Wd, dtype=torch.float64)
        for p in range(H * Wd):
            for pp in range(H * Wd):
                dy, dx = pp // Wd - p // Wd, pp % Wd - p % Wd
                if abs(dy) <= s // 2 and abs(dx) <= s // 2:
                    wf[p, pp] = wc[h, dy + s // 2, dx + s // 2]
        cs = slice(h * C // heads, (h + 1) * C // heads)
        kk = kc[..., h:h + 1].expand(B, H, Wd, C // heads).reshape(B, H * Wd, -1)
        ys.append(reference(qc[..., cs].reshape(B, H * Wd, -1), kk, vc[..., cs].reshape(B, H * Wd, -1), wf))
    cases["aft_conv"] = (y, torch.cat(ys, dim=2).reshape(B, H, Wd, C))
    worst = 0.0
    for name, (got, want) in cases.items():
        err = (got - want).abs().max().item()
        worst = max(worst, err)
        print(f"check {name:18s} max |error| {err:.2e}")
    ok = worst < 1e-10
    print("check", "passed" if ok else "FAILED")
    return ok


# ---------------------------------------------------------------- measurement

def measure(reps, inputs, f):
    xs = [x.detach().clone().requires_grad_() for x in inputs]
    gy = torch.ones_like(xs[0])  # every AFT op returns the shape of q
    times, peak = [], 0
    for rep in range(reps + 2):  # two warm-ups (the first compiles under torch.compile)
        for x in xs:
            x.grad = None
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        f(*xs).backward(gy)
        torch.cuda.synchronize()
        if rep >= 2:
            times.append((time.perf_counter() - t0) * 1e3)
        peak = max(peak, (torch.cuda.max_memory_allocated() - before) / 2**20)
    return statistics.median(times), peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (to check the program)")
    ap.add_argument("--check", action="store_true", help="CPU correctness check of the formulas, then exit")
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check() else 1)
    if not torch.cuda.is_available():
        print("aft_torch.py: no CUDA device (torch.cuda.is_available() is False); nothing measured. "
              "--check runs the CPU correctness check.")
        return
    dev = torch.device("cuda")
    print(f"aft_torch.py: PyTorch {torch.__version__}, device {torch.cuda.get_device_name(0)}, float32, "
          f"forward + backward, median of {args.reps}")
    torch.backends.cuda.matmul.allow_tf32 = False  # the aft kernels are FP32: compare like with like
    torch.backends.cudnn.allow_tf32 = False
    if args.tiny:
        B, D, Ts, windows, C, heads, images, ks = 1, 32, [64], [8], 16, 2, [6], [3]
    else:
        B, D, Ts, windows, C, heads, images, ks = 8, 512, [256, 1024, 4096], [32, 256], 512, 8, [14, 56], [3, 7]
    modes = [("eager", lambda f: f)]
    if not args.no_compile:
        modes.append(("compile", lambda f: torch.compile(f, dynamic=False)))
    print(f"{'case':34s} {'mode':8s} {'median ms':>10s} {'peak MiB':>10s}")

    def run(name, inputs, f):
        for mode, wrap in modes:
            try:
                ms, peak = measure(args.reps, inputs, wrap(f))
                print(f"{name:34s} {mode:8s} {ms:10.3f} {peak:10.1f}", flush=True)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:34s} {mode:8s} {'out of memory':>21s}", flush=True)
                torch.cuda.empty_cache()

    randn = lambda *s: torch.randn(*s, device=dev)
    for T in Ts:
        q, k, v = randn(B, T, D), randn(B, T, D), randn(B, T, D)
        tag = f"T={T} D={D}"
        for causal in (False, True):
            run(f"aft_full{' causal' if causal else ''} {tag}", [q, k, v, randn(T, T)],
                lambda q, k, v, w, c=causal: aft_full(q, k, v, w, c))
        for W in windows:
            if W <= T:
                run(f"aft_local W={W} {tag}", [q, k, v, randn(T, 2 * W - 1)],
                    lambda q, k, v, w, W=W: aft_local(q, k, v, w, W))
        for causal in (False, True):
            run(f"aft_simple{' causal' if causal else ''} {tag}", [q, k, v],
                lambda q, k, v, c=causal: aft_simple(q, k, v, c))
    for hw in images:
        q, k, v = randn(B, hw, hw, C), randn(B, hw, hw, heads), randn(B, hw, hw, C)
        for s in ks:
            run(f"aft_conv {hw}x{hw} s={s} C={C} h={heads}", [q, k, v, randn(heads, s, s)],
                lambda q, k, v, w: aft_conv(q, k, v, w, heads))


if __name__ == "__main__":
    main()
