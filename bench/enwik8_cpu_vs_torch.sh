#!/usr/bin/env bash
# bench/enwik8_cpu_vs_torch.sh: training speed of the `tiny` character LM on the CPU, aft beside
# the same model in PyTorch (bench/enwik8_torch.py), on the same threads, in one run.
#   bench/enwik8_cpu_vs_torch.sh [threads] [steps]     (needs build/ from scripts/run.sh)
# aft's figure is the trainer's tokens/s over the timed steps; both skip a few warm-up steps.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-60}
bin=${ENWIK8_BIN:-build/examples/enwik8/enwik8}
[ -x "$bin" ] || { echo "build the enwik8 program first (scripts/run.sh)" >&2; exit 1; }
echo "hardware: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; threads $threads"
out=$(mktemp -d)
# aft: warm-up run of 3 steps (not timed), then the timed steps in a resumed run.
"$bin" train --preset tiny --threads "$threads" --steps 3 --eval-every 0 --out "$out/run" --quiet >/dev/null 2>&1
aft_line=$("$bin" train --preset tiny --threads "$threads" --steps $((steps + 3)) --eval-every 0 \
  --checkpoint-every 0 --out "$out/run" --resume 2>&1 | grep "finished at step" || true)
aft_tps=$(echo "$aft_line" | sed -n 's/.*, \([0-9.]*[kM]\?\) tokens\/s.*/\1/p')
rm -rf "$out"
torch_out=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/enwik8_torch.py \
  --threads "$threads" --steps "$steps")
torch_tps=$(echo "$torch_out" | awk '/^tokens_per_s/ {print $2}')
echo "$torch_out" | grep '^info' || true
to_num() { awk -v s="$1" 'BEGIN { m = 1; if (s ~ /k$/) m = 1e3; if (s ~ /M$/) m = 1e6; sub(/[kM]$/, "", s); print s * m }'; }
a=$(to_num "$aft_tps")
echo "aft     tokens/s: $a"
echo "pytorch tokens/s: $torch_tps"
awk -v a="$a" -v t="$torch_tps" 'BEGIN { printf "ratio aft/pytorch: %.2f\n", a / t }'
