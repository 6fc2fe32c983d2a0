// tests/fuzz/fuzz_support.cpp: what the readers need from the library besides their own sources.
// AFT_ASSERT's failure handler is defined in core/tensor.cpp, beside the tensors the fuzzers do
// not build; this one does the same (message, abort), so a broken invariant is a finding.
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace aft::detail {

void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "aft: internal assertion failed: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

}  // namespace aft::detail
