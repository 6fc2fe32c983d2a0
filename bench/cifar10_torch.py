#!/usr/bin/python3
# bench/cifar10_torch.py: the CIFAR-10 image model of examples/cifar10 written in PyTorch, to
# measure its training images/s beside aft's (`cifar10 bench --torch` runs both in one go).
#
# The same model, parameter for parameter and name for name (an aft checkpoint loads into it):
#   h = tok_emb[x] + pos_emb[t] + chan_emb[t mod 3]        x: SOS (256) then 3,071 sub-pixels
#   L pre-LN blocks:  h += drop(proj(AFT(qkv(LN1(h)))));  h += drop(fc2(gelu_tanh(fc1(LN2(h)))))
#   logits = head(LN_f(h))[..., :256]                      cross-entropy of every sub-pixel
# with the causal AFT layer written in plain PyTorch as the paper's formula
#   y_t = σ(q_t) ⊙ Σ_{t'<=t} exp(k_t' + w'_{t,t'}) ⊙ v_t' / Σ_{t'<=t} exp(k_t' + w'_{t,t'})
# (w' = u·vᵀ inside the window, 0 outside; AFT-full: everywhere; AFT-simple: w' = 0), in one of
# two ways (--aft-impl):
#   dense    the paper's matrix form: exp(w') [T, T] (0 above the diagonal) @ (exp(k)·v), and the
#            same for the denominator. O(T²·D).
#   blocked  AFT-local as prefix sums + band: keys older than the window enter with bias 0 through
#            a cumulative sum of exp(k)·v shifted by W; the window through W×2W blocks of exp(w)
#            (rows of block i see keys of blocks i−1 and i). O(T·W·D). (AFT-full falls back to dense.)
# Both subtract the per-channel maximum of k over time first (the ratio is unchanged).
# Training step: the same random images (uint8), flip + shift augmentation, AdamW (β 0.9, 0.95,
# weight decay on the linear layers' weights only), gradient clipping at 1.0.
#
# Prints "info ..." lines and "images_per_s <x>". Run with Debian's PyTorch and OpenBLAS's own
# tuning, the same thread count as aft:
#   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/cifar10_torch.py --threads 2
# --check RUN_DIR --data DIR [--images N] instead loads an aft checkpoint and prints the bits/dim
# of the first N test images (compare with `cifar10 eval --out RUN_DIR --max-images N`).
import argparse
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

T = 3072
SOS = 256
VOCAB = 257


def aft_dense(q, k, v, w):
    """q, k, v [B, T, D]; w [T, T] position bias (−inf where a key is not visible)."""
    k = k - k.amax(dim=1, keepdim=True)
    ek = torch.exp(k)
    ew = torch.exp(w)
    num = torch.matmul(ew, ek * v)
    den = torch.matmul(ew, ek)
    return torch.sigmoid(q) * num / den


def aft_local_blocked(q, k, v, wblk, W):
    """AFT-local, causal. wblk [n, W, 2W]: the bias of row iW+a to key (i−1)W+b (any value where
    the key is outside the window: masked here)."""
    B, Tn, D = q.shape
    n = Tn // W
    k = k - k.amax(dim=1, keepdim=True)
    ek = torch.exp(k)
    ekv = ek * v
    # Keys t' <= t − W, bias 0: the prefix sum up to t − W.
    cs = torch.cumsum(torch.cat([ekv, ek], dim=2), dim=1)
    far = F.pad(cs, (0, 0, W, 0))[:, :Tn]
    # Keys t − W < t' <= t: exp(w) over W×2W blocks.
    a = torch.arange(W).view(W, 1)
    b = torch.arange(2 * W).view(1, 2 * W)
    lag = a + W - b  # t − t'
    mask = (lag >= 0) & (lag < W)
    ew = torch.where(mask, torch.exp(wblk), torch.zeros((), dtype=wblk.dtype))  # [n, W, 2W]
    both = torch.cat([ekv, ek], dim=2).view(B, n, W, 2 * D)
    prev = F.pad(both, (0, 0, 0, 0, 1, 0))[:, :n]  # block i−1 (zeros before block 0)
    keys = torch.cat([prev, both], dim=2)  # [B, n, 2W, 2D]
    band = torch.matmul(ew, keys).view(B, Tn, 2 * D)
    tot = far + band
    return torch.sigmoid(q) * tot[..., :D] / tot[..., D:]


class Linear(nn.Linear):
    def __init__(self, i, o):
        super().__init__(i, o)
        nn.init.normal_(self.weight, 0.0, 0.02)
        nn.init.zeros_(self.bias)


class AFTMixer(nn.Module):
    def __init__(self, a, dim):
        super().__init__()
        self.variant, self.window, self.impl = a.variant, a.window, a.aft_impl
        self.factorized = a.bias == "factorized"
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        if self.variant == "simple":
            pass
        elif self.factorized:
            self.u = nn.Parameter(torch.randn(T, a.bias_dim) * 0.01)
            self.v = nn.Parameter(torch.randn(T, a.bias_dim) * 0.01)
        elif self.variant == "local":
            self.band = nn.Parameter(torch.randn(T, self.window) * 0.01)
        else:
            self.w = nn.Parameter(torch.randn(T, T) * 0.01)

    def dense_bias(self):
        """w' [T, T]: −inf above the diagonal; AFT-local: 0 beyond the window."""
        t = torch.arange(T).view(T, 1)
        s = torch.arange(T).view(1, T)
        if self.variant == "simple":
            w = torch.zeros(T, T)
        elif self.factorized:
            w = self.u @ self.v.t()
        elif self.variant == "local":  # band column j is key t − (W−1) + j
            j = (s - t + self.window - 1).clamp(0, self.window - 1)
            w = torch.gather(self.band, 1, j.expand(T, T))
        else:
            w = self.w
        if self.variant == "local":
            w = torch.where(t - s < self.window, w, torch.zeros((), dtype=w.dtype))
        return w.masked_fill(s > t, float("-inf"))

    def block_bias(self):
        """[n, W, 2W]: bias of row iW + a to key (i−1)W + b."""
        W = self.window
        n = T // W
        rows = torch.arange(T).view(n, W, 1)
        keys = rows[:, :1, :] - W + torch.arange(2 * W).view(1, 1, 2 * W)  # [n, 1, 2W]
        kc = keys.clamp(0, T - 1)
        if self.factorized:
            return torch.matmul(self.u.view(n, W, -1), self.v[kc.view(n, 2 * W)].transpose(1, 2))
        j = (kc - rows + W - 1).clamp(0, W - 1)  # [n, W, 2W]
        return self.band[rows.expand(n, W, 2 * W), j]

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.variant == "simple":
            k = k - k.amax(dim=1, keepdim=True)
            ek = torch.exp(k)
            y = torch.sigmoid(q) * torch.cumsum(ek * v, 1) / torch.cumsum(ek, 1)
        elif self.variant == "local" and self.impl == "blocked":
            y = aft_local_blocked(q, k, v, self.block_bias(), self.window)
        else:
            y = aft_dense(q, k, v, self.dense_bias())
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, dim, hidden, p):
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(self.fc2(F.gelu(self.fc1(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.ln1 = nn.LayerNorm(a.dim, eps=1e-5)
        self.mixer = AFTMixer(a, a.dim)
        self.drop = nn.Dropout(a.dropout)
        self.ln2 = nn.LayerNorm(a.dim, eps=1e-5)
        self.mlp = MLP(a.dim, a.mlp_hidden, a.dropout)

    def forward(self, x):
        x = x + self.drop(self.mixer(self.ln1(x)))
        return x + self.mlp(self.ln2(x))


class ImageAFT(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, a.dim)
        nn.init.normal_(self.tok_emb.weight, 0.0, 0.02)
        self.pos_emb = nn.Parameter(torch.randn(T, a.dim) * 0.02)
        self.chan_emb = nn.Parameter(torch.randn(3, a.dim) * 0.02)
        self.drop = nn.Dropout(a.dropout)
        for i in range(a.layers):  # named blocks0, blocks1, ... as in aft
            self.add_module(f"blocks{i}", Block(a))
        self.layers = a.layers
        self.ln_f = nn.LayerNorm(a.dim, eps=1e-5)
        self.head = Linear(a.dim, VOCAB)

    def forward(self, x):  # [B, T] -> [B, T, 256]
        Tn = x.shape[1]
        h = self.tok_emb(x) + self.pos_emb[:Tn] + self.chan_emb.repeat(Tn // 3 + 1, 1)[:Tn]
        h = self.drop(h)
        for i in range(self.layers):
            h = getattr(self, f"blocks{i}")(h)
        return self.head(self.ln_f(h))[..., :256]


def param_groups(model, wd):
    decay = [p for n, p in model.named_parameters()
             if n.endswith(".weight") and isinstance(model.get_submodule(n.rsplit(".", 1)[0]), nn.Linear)]
    ids = {id(p) for p in decay}
    return [{"params": decay, "weight_decay": wd},
            {"params": [p for p in model.parameters() if id(p) not in ids], "weight_decay": 0.0}]


def make_batch(images, B, g):
    """B random images, flipped and shifted as in aft: [B, 3072] inputs and targets (int64)."""
    idx = torch.randint(0, images.shape[0], (B,), generator=g)
    img = images[idx].view(B, 32, 32, 3).to(torch.int64)
    flip = torch.randint(0, 2, (B,), generator=g).bool()
    img = torch.where(flip.view(B, 1, 1, 1), img.flip(2), img)
    shift = torch.randint(-10, 11, (B, 1, 1, 1), generator=g)
    y = (img + shift).clamp(0, 255).view(B, T)
    x = torch.cat([torch.full((B, 1), SOS, dtype=torch.int64), y[:, :-1]], dim=1)
    return x, y


def read_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    dt = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    state = {}
    for k, v in header.items():
        if k.startswith("optimizer."):
            continue
        b, e = v["data_offsets"]
        state[k] = torch.frombuffer(bytearray(data[b:e]), dtype=dt[v["dtype"]]).reshape(v["shape"])
    return state, meta


def read_test_images(data_dir, n):
    path = data_dir
    if os.path.isdir(os.path.join(path, "cifar-10-batches-bin")):
        path = os.path.join(path, "cifar-10-batches-bin")
    raw = open(os.path.join(path, "test_batch.bin"), "rb").read(3073 * n)
    rec = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 3073)
    return rec[:, 1:].view(-1, 3, 1024).transpose(1, 2).reshape(-1, T)  # planes -> R, G, B per pixel


def check(a):
    state, meta = read_safetensors(os.path.join(a.check, "checkpoint.safetensors"))
    m = json.loads(meta["aft.config"])["model"]
    for key in ("dim", "layers", "mlp_hidden", "window", "bias_dim", "variant", "bias"):
        setattr(a, key, m[key])
    a.dropout = 0.0
    model = ImageAFT(a)
    model.load_state_dict(state, strict=True)
    model.eval()
    imgs = read_test_images(a.data, a.images).to(torch.int64)
    nats = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, imgs.shape[0], 8):
            y = imgs[i:i + 8]
            x = torch.cat([torch.full((y.shape[0], 1), SOS, dtype=torch.int64), y[:, :-1]], dim=1)
            nll = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1), reduction="none").double()
            nats += nll.view(-1, 3).sum(0)
    n = imgs.shape[0]
    bpd = nats.sum().item() / (n * T) / math.log(2)
    ch = (nats / (n * 1024) / math.log(2)).tolist()
    print(f"torch ({a.aft_impl}) test bits/dim {bpd:.4f} over {n} images "
          f"(R {ch[0]:.4f}, G {ch[1]:.4f}, B {ch[2]:.4f})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--mlp-hidden", type=int, default=256)
    ap.add_argument("--variant", default="local", choices=["local", "full", "simple"])
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--bias", default="factorized", choices=["factorized", "full"])
    ap.add_argument("--bias-dim", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=0, help="images per forward/backward (0: --batch)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup-steps", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--aft-impl", default="blocked", choices=["blocked", "dense"])
    ap.add_argument("--check", default="", help="an aft run directory: print its bits/dim instead")
    ap.add_argument("--data", default="", help="CIFAR-10 directory (with --check)")
    ap.add_argument("--images", type=int, default=16, help="test images scored (with --check)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    print(f"info torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{torch.__config__.parallel_info().splitlines()[-1].strip()}", flush=True)
    if a.check:
        check(a)
        return
    if a.variant == "local" and a.aft_impl == "blocked" and T % a.window != 0:
        a.aft_impl = "dense"  # blocks must tile the sequence
    model = ImageAFT(a)
    opt = torch.optim.AdamW(param_groups(model, a.weight_decay), lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(a.seed)
    images = torch.randint(0, 256, (64, T), generator=g, dtype=torch.uint8)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"info model AFT-{a.variant} ({a.aft_impl}), {a.layers} layers, width {a.dim}, "
          f"{nparams} parameters, batch {a.batch}", flush=True)
    t_start = 0.0
    for s in range(a.warmup_steps + a.steps):
        if s == a.warmup_steps:
            t_start = time.perf_counter()
        t0 = time.perf_counter()
        x, y = make_batch(images, a.batch, g)
        m = a.micro_batch if a.micro_batch > 0 else a.batch
        loss = 0.0
        for i in range(0, a.batch, m):  # gradients accumulated over micro-batches, as in aft
            part = F.cross_entropy(model(x[i:i + m]).reshape(-1, 256), y[i:i + m].reshape(-1))
            (part * (x[i:i + m].shape[0] / a.batch)).backward()
            loss += part.item() * x[i:i + m].shape[0] / a.batch
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        print(f"info step {s}: loss {loss:.4f}, {time.perf_counter() - t0:.3f} s"
              f"{' (warm-up)' if s < a.warmup_steps else ''}", flush=True)
    ips = a.batch * a.steps / (time.perf_counter() - t_start)
    print(f"images_per_s {ips:.2f}", flush=True)


if __name__ == "__main__":
    main()
