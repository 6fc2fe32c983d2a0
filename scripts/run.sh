#!/usr/bin/env bash
# scripts/run.sh: installs what is missing, builds aft (Release, in build/) and runs the main
# job: a small model trained through the tape on data that ships with the repository.
# Arguments after the script name go to the training program (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${CMAKE_ARGS:-} >build.configure.log 2>&1 || {
  cat build.configure.log; exit 1; }
cmake --build build -j "${JOBS:-$(nproc)}" --target demo_mlp
exec build/examples/demo_mlp "$@"
