#!/usr/bin/python3
# bench/torch_cuda_ops.py: the measurements of bench/bench_cuda_ops.cpp in PyTorch eager on the
# GPU, same sizes, same byte counts, same report:
#   d2d copy (dst.copy_(src)), add, layer_norm forward + backward, cross_entropy forward +
#   backward, AdamW step (foreach, the default multi-tensor implementation), matmul float32
#   [S, S] @ [S, S] with TF32 off and on.
# Each figure is the median of several timed runs after a warm-up run, each run ending with
# torch.cuda.synchronize(). Without a GPU (or PyTorch without CUDA) it says so and exits 0.
#   /usr/bin/python3 bench/torch_cuda_ops.py [--tiny] [--reps R]
import argparse
import statistics
import time

import torch

SIZES = dict(n=1 << 26, ln_rows=32768, ln_dim=1024, ce_rows=4096, ce_classes=32768,
             adam_params=16, adam_numel=1 << 22, mm=4096, reps=20)
TINY = dict(n=4096, ln_rows=64, ln_dim=64, ce_rows=32, ce_classes=256, adam_params=3,
            adam_numel=1000, mm=64, reps=3)


def median_seconds(reps, f):
    f()
    torch.cuda.synchronize()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def report(what, size, nbytes, s, copy_gbs):
    gbs = nbytes / s * 1e-9
    print(f"{what:<28} {size:<22} {s * 1e3:10.3f} ms {gbs:9.1f} GB/s {100 * gbs / copy_gbs:7.1f}% of d2d copy")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_cuda_ops: PyTorch sees no CUDA device; nothing to measure")
        return
    z = dict(TINY if args.tiny else SIZES)
    if args.reps > 0:
        z["reps"] = args.reps
    reps, dev = z["reps"], torch.device("cuda")
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}; median of {reps} runs\n")
    g = torch.Generator(device=dev).manual_seed(1)

    n = z["n"]
    a = torch.randn(n, device=dev, generator=g)
    b = torch.randn(n, device=dev, generator=g)
    dst = torch.empty(n, device=dev)
    with torch.no_grad():
        copy_s = median_seconds(reps, lambda: dst.copy_(a))
        copy_gbs = 8.0 * n / copy_s * 1e-9
        report("d2d copy", f"n={n}", 8.0 * n, copy_s, copy_gbs)
        report("add", f"n={n}", 12.0 * n, median_seconds(reps, lambda: torch.add(a, b)), copy_gbs)
    del a, b, dst

    rows, dim = z["ln_rows"], z["ln_dim"]
    x = torch.randn(rows, dim, device=dev, generator=g, requires_grad=True)
    ln = torch.nn.LayerNorm(dim, device=dev)
    gy = torch.randn(rows, dim, device=dev, generator=g)

    def ln_step():
        x.grad = None
        ln.zero_grad(set_to_none=True)
        ln(x).backward(gy)
    report("layer_norm fwd+bwd", f"{rows}x{dim}", 20.0 * rows * dim, median_seconds(reps, ln_step), copy_gbs)
    del x, gy

    rows, classes = z["ce_rows"], z["ce_classes"]
    logits = torch.randn(rows, classes, device=dev, generator=g, requires_grad=True)
    target = torch.randint(0, classes, (rows,), device=dev, generator=g)

    def ce_step():
        logits.grad = None
        torch.nn.functional.cross_entropy(logits, target).backward()
    report("cross_entropy fwd+bwd", f"{rows}x{classes}", 12.0 * rows * classes, median_seconds(reps, ce_step),
           copy_gbs)
    del logits, target

    params = []
    for _ in range(z["adam_params"]):
        p = torch.randn(z["adam_numel"], device=dev, generator=g, requires_grad=True)
        p.grad = torch.randn(z["adam_numel"], device=dev, generator=g)
        params.append(p)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    report("AdamW step", f"{z['adam_params']}x{z['adam_numel']}", 28.0 * z["adam_params"] * z["adam_numel"],
           median_seconds(reps, opt.step), copy_gbs)
    del params, opt

    s_mm = z["mm"]
    x = torch.randn(s_mm, s_mm, device=dev, generator=g)
    y = torch.randn(s_mm, s_mm, device=dev, generator=g)
    flops = 2.0 * s_mm ** 3
    with torch.no_grad():
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            s = median_seconds(reps, lambda: torch.matmul(x, y))
            name = "matmul f32 (TF32 allowed)" if tf32 else "matmul f32"
            print(f"{name:<28} {str(s_mm) + '^3':<22} {s * 1e3:10.3f} ms {flops / s * 1e-12:9.2f} TFLOP/s")
    torch.backends.cuda.matmul.allow_tf32 = False


if __name__ == "__main__":
    main()
