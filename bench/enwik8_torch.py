#!/usr/bin/python3
# bench/enwik8_torch.py: the PyTorch twin of `enwik8 train` (examples/enwik8), for a side-by-side
# measurement of CPU training speed (bench/enwik8_cpu_vs_torch.sh runs both).
#
# The same model as nn::AFTLM with the same sizes: byte embedding + learned positions, L pre-LN
# blocks of causal AFT-local (factorised position bias w = u·vᵀ, 0 outside the window) and a
# GELU (tanh) MLP, final LayerNorm, output projection; AdamW (betas 0.9/0.95), gradient clipping
# at 1.0, random windows of context+1 bytes. AFT-local is written as PyTorch users write it
# (after labml's annotated implementation): the T×T bias with the window and causal masks,
# stabilised by the row maximum of w and the maximum of k over time, and two matrix products.
# Prints one line "tokens_per_s <value>" (and information lines) after the timed steps.
#
#   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/enwik8_torch.py --threads 2
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AFTLocal(nn.Module):
    def __init__(self, max_len, dim, window, bias_dim):
        super().__init__()
        self.dim, self.window = dim, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.u = nn.Parameter(torch.randn(max_len, bias_dim) * 0.01)
        self.v = nn.Parameter(torch.randn(max_len, bias_dim) * 0.01)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        w = self.u[:T] @ self.v[:T].t()                           # [T, T]
        i = torch.arange(T)
        rel = i[:, None] - i[None, :]                              # t - t'
        w = torch.where(rel.abs() < self.window, w, torch.zeros_like(w))  # 0 outside the window
        w = w.masked_fill(rel < 0, float("-inf"))                  # causal
        e = torch.exp(w - w.max(dim=1, keepdim=True).values)      # [T, T]
        p = torch.exp(k - k.max(dim=1, keepdim=True).values)      # [B, T, D]
        num = torch.einsum("ij,bjd->bid", e, p * v)
        den = torch.einsum("ij,bjd->bid", e, p)
        return self.proj(torch.sigmoid(q) * num / den)


class Block(nn.Module):
    def __init__(self, max_len, dim, hidden, window, bias_dim):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mixer = AFTLocal(max_len, dim, window, bias_dim)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.mixer(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class CharLM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tok = nn.Embedding(256, a.dim)
        self.pos = nn.Parameter(torch.randn(a.context, a.dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(a.context, a.dim, a.mlp_hidden, a.window, a.bias_dim) for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(a.dim)
        self.head = nn.Linear(a.dim, 256)

    def forward(self, x):
        h = self.tok(x) + self.pos[: x.shape[1]]
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln_f(h))


def main():
    ap = argparse.ArgumentParser(description="PyTorch twin of enwik8 train (CPU speed).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--mlp-hidden", type=int, default=512)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--bias-dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50, help="timed steps")
    ap.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    ap.add_argument("--data", default="", help="a byte file (default: random bytes)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.data:
        with open(a.data, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
    else:
        data = torch.randint(0, 256, (1 << 20,))
    model = CharLM(a)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    B, T = a.batch, a.context

    def step():
        starts = torch.randint(0, len(data) - T - 1, (B,))
        idx = starts[:, None] + torch.arange(T + 1)
        win = data[idx]
        logits = model(win[:, :T])
        loss = F.cross_entropy(logits.reshape(B * T, 256), win[:, 1:].reshape(B * T))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup_steps):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    print(f"info torch {torch.__version__}, {a.threads} threads, {params} parameters, loss {loss:.4f}")
    print(f"tokens_per_s {a.steps * B * T / dt:.1f}")


if __name__ == "__main__":
    main()
