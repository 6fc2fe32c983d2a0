#!/usr/bin/env bash
# scripts/fuzz.sh: builds the libFuzzer harnesses of tests/fuzz with clang (in build-fuzz/), writes
# their seed corpora (small valid files made by tests/fuzz/make_seeds.cpp) and runs every fuzzer
# for a bounded time. Fails on any crash, sanitizer report (ASan, UBSan, leaks), escaped exception,
# allocation over 512 MiB, or input taking over 10 s; the input that did it is left in
# build-fuzz/findings/ (turn it into a regression test in tests/test_hostile_input.cpp).
#
#   scripts/fuzz.sh              each fuzzer for FUZZ_SECONDS (default 20)
#   FUZZ_SECONDS=300 scripts/fuzz.sh
# In CI (2 cores): about 1.5 min to build (less with ccache), then 8 x 20 s.
# The corpora grow in build-fuzz/corpus/ and are reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang libclang-rt-dev  # clang++ and libFuzzer (libclang_rt.fuzzer)
seconds=${FUZZ_SECONDS:-20}
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
mkdir -p build-fuzz
cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >build-fuzz/configure.log 2>&1 || {
  cat build-fuzz/configure.log; exit 1; }
cmake --build build-fuzz -j "${JOBS:-$(nproc)}"
build-fuzz/make_seeds build-fuzz/seeds
mkdir -p build-fuzz/findings
failed=()
for name in json safetensors tar zip gzip cifar10 jpeg corpus; do
  mkdir -p "build-fuzz/corpus/$name"
  log="build-fuzz/fuzz_$name.log"
  echo "== fuzz_$name for ${seconds} s"
  if build-fuzz/fuzz_$name -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=512 \
      -artifact_prefix="build-fuzz/findings/${name}-" "build-fuzz/corpus/$name" "build-fuzz/seeds/$name" >"$log" 2>&1; then
    grep -E "^Done" "$log" || true
  else
    tail -40 "$log"
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzers failed: ${failed[*]} (inputs in build-fuzz/findings/, logs in build-fuzz/fuzz_*.log)"
  exit 1
fi
echo "all fuzzers ran ${seconds} s each without a finding"
