// tests/fuzz/fuzz_tar.cpp: the streaming tar reader (examples/common/tar.cpp) on any file, plain
// or gzip-compressed: the members, or aft::Error. Every member's bytes are kept, so a header
// lying about a size must not cost more memory than the input holds.
#include "../../examples/common/tar.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = aft::fuzz::input_file(data, size, ".tar");
  aft::fuzz::expect_result_or_error(
      [&] { aft::files::read_tar(path, [](const std::string&, uint64_t) { return true; }); });
  return 0;
}
