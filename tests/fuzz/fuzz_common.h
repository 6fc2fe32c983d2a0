// tests/fuzz/fuzz_common.h: what the libFuzzer harnesses share. Each harness feeds its input to
// one reader and accepts exactly two outcomes: a result, or aft::Error (a clear refusal).
// Anything else is a finding: a crash or sanitizer report (ASan, UBSan), another exception
// type escaping (std::bad_alloc from a lying size, std::length_error, ...), memory past
// libFuzzer's -malloc_limit_mb / -rss_limit_mb, or a run past -timeout.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace aft::fuzz {

// Writes the input to a file of this process (the readers take paths), with the given suffix.
inline std::string input_file(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string dir = [] {
    const char* d = std::getenv("TMPDIR");
    return std::string(d && *d ? d : "/tmp");
  }();
  std::string path = dir + "/aft_fuzz_" + std::to_string(::getpid()) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness's own failure, not a finding in aft
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs f; an aft::Error is the reader refusing the input, which is fine.
template <class F>
void expect_result_or_error(F&& f) {
  try {
    f();
  } catch (const aft::Error&) {
  }
}

}  // namespace aft::fuzz
