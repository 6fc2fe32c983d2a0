// tests/test_main.cpp: the doctest runner shared by every test binary.
//
// A binary whose tests need a CUDA device (tests/cuda/) calls require_cuda_or_skip() from
// tests/helpers.h; when there is none it exits with code 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

int main(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
