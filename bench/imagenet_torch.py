#!/usr/bin/python3
# bench/imagenet_torch.py: the ImageNet example's model (examples/imagenet, preset tiny by
# default) written in PyTorch, trained on random images to measure training images/s, for
# comparison with `imagenet train --synthetic` (the same model and recipe in aft, no decoding).
#
# The model, as examples/imagenet/model.h: patch embedding (a Linear on p×p×3 patch vectors),
# L pre-LN blocks x + AFTConv(LN(x)), x + MLP(LN(x)) (×4, tanh GELU) with stochastic depth,
# global average pooling, LayerNorm, linear head. AFT-conv as the paper's formula, with torch
# ops: k has one channel per head, the kernel is re-normalised as γ·(w − mean)/std + β,
#   y = sigmoid(q) · (conv(e^k·v, e^w − 1) + Σ e^k·v) / (conv(e^k, e^w − 1) + Σ e^k)
# where conv is a depthwise, same-padded conv2d (per channel, with its head's kernel) and Σ
# sums over all pixels; k is shifted by its maximum over the image first (the shift cancels).
# Training: AdamW (weight decay 0.05 on weights only), label smoothing 0.1, as aft's.
# Prints "info ..." lines and a final "images_per_s <value>".
# Run with Debian's PyTorch and OpenBLAS's own tuning, on as many threads as aft uses:
#   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/imagenet_torch.py --threads 2
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AFTConv(nn.Module):
    def __init__(self, dim, heads, kernel):
        super().__init__()
        self.dim, self.heads, self.kernel = dim, heads, kernel
        self.qkv = nn.Linear(dim, 2 * dim + heads)
        self.proj = nn.Linear(dim, dim)
        self.w = nn.Parameter(torch.randn(heads, kernel, kernel))
        self.gamma = nn.Parameter(torch.zeros(heads))
        self.beta = nn.Parameter(torch.zeros(heads))
        for lin in (self.qkv, self.proj):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def kernel_weights(self):  # γ·(w − mean)/std + β per head, std with a 1e-5 floor
        mu = self.w.mean(dim=(1, 2), keepdim=True)
        sd = torch.sqrt(self.w.var(dim=(1, 2), unbiased=False, keepdim=True) + 1e-5)
        return self.gamma.view(-1, 1, 1) * (self.w - mu) / sd + self.beta.view(-1, 1, 1)

    def forward(self, x):  # x [B, H, W, C]
        B, H, W, C = x.shape
        nh, s = self.heads, self.kernel
        q, k, v = self.qkv(x).split([C, nh, C], dim=-1)
        q = q.permute(0, 3, 1, 2)  # channels first for conv2d
        k = k.permute(0, 3, 1, 2)
        v = v.permute(0, 3, 1, 2)
        ek = torch.exp(k - k.amax(dim=(2, 3), keepdim=True))  # [B, heads, H, W]
        ek_c = ek.repeat_interleave(C // nh, dim=1)             # each head's key on its channels
        ekv = ek_c * v
        kw = torch.exp(self.kernel_weights()) - 1.0              # [heads, s, s]
        num = F.conv2d(ekv, kw.repeat_interleave(C // nh, dim=0).unsqueeze(1), padding=s // 2, groups=C)
        num = num + ekv.sum(dim=(2, 3), keepdim=True)
        den = F.conv2d(ek, kw.unsqueeze(1), padding=s // 2, groups=nh) + ek.sum(dim=(2, 3), keepdim=True)
        y = torch.sigmoid(q) * num / den.repeat_interleave(C // nh, dim=1)
        return self.proj(y.permute(0, 2, 3, 1))


def drop_path(x, p, training):
    if not training or p == 0:
        return x
    mask = (torch.rand(x.shape[0], device=x.device) >= p).to(x.dtype) / (1 - p)
    return x * mask.view(-1, *([1] * (x.dim() - 1)))


class Block(nn.Module):
    def __init__(self, dim, heads, kernel, mlp_ratio, p):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mixer = AFTConv(dim, heads, kernel)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_ratio * dim), nn.Linear(mlp_ratio * dim, dim)
        for lin in (self.fc1, self.fc2):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)
        self.p = p

    def forward(self, x):
        x = x + drop_path(self.mixer(self.ln1(x)), self.p, self.training)
        h = self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))
        return x + drop_path(h, self.p, self.training)


class ImageAFT(nn.Module):
    def __init__(self, patch, dim, layers, heads, kernel, mlp_ratio, classes, drop_path_rate):
        super().__init__()
        self.patch = patch
        self.patch_embed = nn.Linear(patch * patch * 3, dim)
        rates = [drop_path_rate * i / (layers - 1) if layers > 1 else 0.0 for i in range(layers)]
        self.blocks = nn.ModuleList(Block(dim, heads, kernel, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        for lin in (self.patch_embed, self.head):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, images):  # [B, S, S, 3] -> [B, classes]
        B, H, W, _ = images.shape
        p = self.patch
        x = images.reshape(B, H // p, p, W // p, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(B, H // p, W // p, p * p * 3)
        x = self.patch_embed(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x.mean(dim=(1, 2))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kernel", type=int, default=5)
    ap.add_argument("--mlp-ratio", type=int, default=4)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--drop-path", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=30, help="timed steps (after 3 of warm-up)")
    ap.add_argument("--time", type=float, default=0, help="if > 0: time steps for this many seconds instead")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    print(f"info torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    model = ImageAFT(args.patch, args.dim, args.layers, args.heads, args.kernel, args.mlp_ratio, args.classes,
                     args.drop_path)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() == 2)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3)
    print(f"info model: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{args.image_size}x{args.image_size} images, batch {args.batch}", flush=True)
    S = args.image_size

    def step():
        x = torch.randn(args.batch, S, S, 3)
        y = torch.randint(0, args.classes, (args.batch,))
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    n = 0
    while (args.time > 0 and time.perf_counter() - t0 < args.time) or (args.time <= 0 and n < args.steps):
        loss = step()
        n += 1
    s = time.perf_counter() - t0
    if not math.isfinite(loss):
        raise SystemExit("loss is not finite")
    print(f"info {n} steps in {s:.2f} s, last loss {loss:.4f}", flush=True)
    print(f"images_per_s {n * args.batch / s:.1f}", flush=True)


if __name__ == "__main__":
    main()
