#!/usr/bin/env bash
# scripts/run.sh: installs what is missing, builds aft (Release, in build/) and runs the main
# job: the `tiny` AFT-local character language model (examples/enwik8) trained on the corpus
# compiled into the program (aft's own docs and sources: no download), then a sample from it.
# About 7 minutes on 2 CPU cores; the run directory is runs/enwik8-tiny (checkpoint, metrics.csv,
# curves.svg). Arguments replace the training options, e.g.
#   scripts/run.sh --steps 200                      a shorter run
#   scripts/run.sh --data enwik8.zip --out runs/e8  Enwik8 (scripts/download_enwik8.sh)
#   scripts/run.sh --device cuda --preset small     on a GPU
#   scripts/run.sh --overwrite                      again, replacing the previous run (a run
#                                                   directory is never replaced without it)
#   scripts/run.sh --resume                         continue the previous run where it stopped
# (`build/examples/enwik8/enwik8 train --help` lists them all.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${CMAKE_ARGS:-} >build.configure.log 2>&1 || {
  cat build.configure.log; exit 1; }
cmake --build build -j "${JOBS:-$(nproc)}" --target enwik8

# The sample uses training's run directory, device and data: pass those options on.
args=("$@")
sample_args=()
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[i]}" in
    --out | --preset | --device | --data | --dataset | --threads) sample_args+=("${args[i]}" "${args[i + 1]:-}") ;;
    --out=* | --preset=* | --device=* | --data=* | --dataset=* | --threads=*) sample_args+=("${args[i]}") ;;
  esac
done

build/examples/enwik8/enwik8 train "$@"
echo
echo "== a sample from the trained model:"
build/examples/enwik8/enwik8 sample --length 300 --top-k 20 "${sample_args[@]}"
echo
