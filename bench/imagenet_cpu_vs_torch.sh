#!/usr/bin/env bash
# bench/imagenet_cpu_vs_torch.sh: training speed of the ImageNet example's `tiny` AFT-conv
# classifier on the CPU, aft beside the same model in PyTorch (bench/imagenet_torch.py), on the
# same threads, in one run. Both train on random images (`imagenet train --synthetic`), so the
# JPEG pipeline is not timed (bench_imagenet_loader times it).
#   bench/imagenet_cpu_vs_torch.sh [threads] [steps]   (needs build/ from scripts/run.sh or test.sh)
# aft's figure is the trainer's images/s over the timed steps (after 3 untimed warm-up steps
# in a first run that the timed run resumes); PyTorch's skips 3 warm-up steps too.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-30}
bin=${IMAGENET_BIN:-build/examples/imagenet/imagenet}
[ -x "$bin" ] || { echo "build the imagenet program first (cmake --build build --target imagenet)" >&2; exit 1; }
echo "hardware: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; threads $threads"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" train --synthetic --preset tiny --threads "$threads" --steps 3 --eval-every 0 --out "$out/run" \
  --quiet >/dev/null 2>&1
aft_line=$("$bin" train --synthetic --preset tiny --threads "$threads" --steps $((steps + 3)) \
  --eval-every 0 --checkpoint-every 0 --out "$out/run" --resume 2>&1 | grep "finished at step" || true)
aft_ips=$(echo "$aft_line" | sed -n 's/.*, \([0-9.]*\) images\/s.*/\1/p')
torch_out=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/imagenet_torch.py \
  --threads "$threads" --steps "$steps")
torch_ips=$(echo "$torch_out" | awk '/images_per_s/ {print $NF}' | tail -1)
echo "aft     images/s: $aft_ips"
echo "pytorch images/s: $torch_ips"
awk -v a="$aft_ips" -v t="$torch_ips" 'BEGIN { printf "ratio aft/pytorch: %.2f\n", a / t }'
