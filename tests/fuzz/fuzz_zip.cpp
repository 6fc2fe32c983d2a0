// tests/fuzz/fuzz_zip.cpp: the zip reader (examples/common/files.cpp) on any file: the one
// member's bytes (their size and CRC-32 checked), or aft::Error.
#include "../../examples/common/files.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = aft::fuzz::input_file(data, size, ".zip");
  aft::fuzz::expect_result_or_error([&] { aft::files::read_zip_member(path); });
  return 0;
}
