#!/usr/bin/python3
# bench/torch_ops.py: the measurements of bench/bench_ops.cpp, in PyTorch, for comparison.
#
# (1) seconds per op (median) of add, mul, exp, sigmoid, gelu on contiguous float32 tensors of
#     1M..64M elements, each op allocating its output;
# (2) microseconds per op of add on two [16] tensors: no grad, with grad (forward only), and
#     forward+backward of a chain of 100 adds; mul and exp with grad; exp without;
# (3) seconds to sum a [4096, 4096] tensor over rows, over columns, over everything.
# The numbers include the Python call of each op, as PyTorch is normally used.
# Prints "key value" lines that bench_ops --torch reads ("info ..." lines are shown as is).
# Run with Debian's PyTorch and OpenBLAS's own tuning:
#   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_ops.py --threads 2
import argparse
import statistics
import time

import torch


def median_seconds(reps, f):
    f()  # warm-up
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def micros_per_call(batches, per_batch, f):
    for _ in range(per_batch):
        f()
    t = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(per_batch):
            f()
        t.append((time.perf_counter() - t0) * 1e6 / per_batch)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="1,4,16,64", help="millions (2^20) of elements")
    ap.add_argument("--reps", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"info version {torch.__version__}, {torch.get_num_threads()} threads, "
          f"backend {torch.__config__.parallel_info().splitlines()[-1].strip()}", flush=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in [int(s) for s in args.sizes.split(",")]:
            n = m << 20
            reps = args.reps if args.reps > 0 else (15 if m <= 4 else 9 if m <= 16 else 5)
            a = torch.randn(n, generator=g)
            b = torch.randn(n, generator=g)
            ops = {
                "add": lambda: torch.add(a, b),
                "mul": lambda: torch.mul(a, b),
                "exp": lambda: torch.exp(a),
                "sigmoid": lambda: torch.sigmoid(a),
                "gelu": lambda: torch.nn.functional.gelu(a),
            }
            for name, f in ops.items():
                print(f"ew {name} {n} {median_seconds(reps, f):.9g}", flush=True)
            del a, b

        x = torch.randn(4096, 4096, generator=g)
        for name, dims in (("rows", (1,)), ("columns", (0,)), ("all", (0, 1))):
            print(f"red {name} {median_seconds(7, lambda: torch.sum(x, dim=dims)):.9g}", flush=True)
        del x

    batches, per = 31, 2000
    a = torch.randn(16)
    b = torch.randn(16)
    ag = a.detach().clone().requires_grad_()
    res = {}
    res["add_nograd"] = micros_per_call(batches, per, lambda: torch.add(a, b))
    res["add_grad_fwd"] = micros_per_call(batches, per, lambda: torch.add(ag, b))
    K = 100
    seed = torch.ones(16)

    def chain():
        x = ag
        for _ in range(K):
            x = torch.add(x, b)
        x.backward(seed)
        ag.grad = None

    res["add_fwd_bwd"] = micros_per_call(batches, 20, chain) / K
    res["mul_grad_fwd"] = micros_per_call(batches, per, lambda: torch.mul(ag, b))
    res["exp_grad_fwd"] = micros_per_call(batches, per, lambda: torch.exp(ag))
    res["exp_nograd"] = micros_per_call(batches, per, lambda: torch.exp(a))
    # The Python side of a call, for reference: a no-op builtin call in the same loop.
    res["python_call"] = micros_per_call(batches, per, lambda: len(a.shape))
    for k, v in res.items():
        print(f"overhead {k} {v:.6g}", flush=True)


if __name__ == "__main__":
    main()
