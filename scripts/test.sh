#!/usr/bin/env bash
# scripts/test.sh: installs what is missing, builds aft and runs every test.
#
#   scripts/test.sh                 Release build in build/ (CUDA: AUTO), all tests
#   scripts/test.sh --sanitize      also: AddressSanitizer + UBSan build in build-asan/ with the
#                                   CUDA kernels on the SIMT emulator (AFT_CUDA=EMULATE), all tests,
#                                   then every reader's libFuzzer harness for FUZZ_SECONDS (20) each
#                                   (scripts/fuzz.sh, clang)
#   scripts/test.sh --emulate       Release build with the SIMT emulator in build-emu/
#   scripts/test.sh --racecheck     also: the SIMT emulator with its race checker in build-race/
#                                   (Release, AFT_EMU_RACECHECK=ON), the `cuda` tests only
#
# Environment: JOBS (parallel jobs, default: number of CPUs), CMAKE_ARGS (extra configure
# arguments for every build), AFT_CUDA (override the CUDA mode of the main build).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
emulate=0
racecheck=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --emulate) emulate=1 ;;
    --racecheck) racecheck=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg (try --help)" >&2; exit 2 ;;
  esac
done

scripts/deps.sh
JOBS=${JOBS:-$(nproc)}
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi

# build_and_test DIR [cmake args...]; BUILD_TARGET and TEST_LABEL, when set, narrow what is
# built and which tests run.
build_and_test() {
  local dir=$1
  shift
  echo "== configure $dir: $*"
  cmake -S . -B "$dir" -G Ninja "${launcher[@]}" ${CMAKE_ARGS:-} "$@" >"$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log"; exit 1; }
  grep "aft:" "$dir.configure.log" || true
  echo "== build $dir"
  cmake --build "$dir" -j "$JOBS" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
  echo "== test $dir"
  ctest --test-dir "$dir" -j "$JOBS" --output-on-failure --timeout 900 ${TEST_LABEL:+-L "$TEST_LABEL"}
}

mkdir -p build
build_and_test build -DCMAKE_BUILD_TYPE=Release -DAFT_CUDA="${AFT_CUDA:-AUTO}"
if [ "$emulate" = 1 ]; then
  build_and_test build-emu -DCMAKE_BUILD_TYPE=Release -DAFT_CUDA=EMULATE
fi
if [ "$racecheck" = 1 ]; then
  # The race checker instruments the .cu files with -fsanitize=thread, which GCC refuses beside
  # -fsanitize=address: its own build, of the `cuda` tests only.
  BUILD_TARGET=aft_cuda_tests TEST_LABEL=cuda build_and_test build-race -DCMAKE_BUILD_TYPE=Release \
    -DAFT_CUDA=EMULATE -DAFT_EMU_RACECHECK=ON -DAFT_BUILD_BENCH=OFF -DAFT_BUILD_EXAMPLES=OFF
fi
if [ "$sanitize" = 1 ]; then
  # Benchmarks are left out: the sanitizers check the library, the examples' code and the tests.
  build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DAFT_SANITIZE=ON -DAFT_CUDA=EMULATE \
    -DAFT_BUILD_BENCH=OFF
  scripts/fuzz.sh
fi
echo "all tests passed"
