// tests/fuzz/fuzz_gzip.cpp: the gzip reader and the by-content dispatch of read_data_file
// (examples/common/files.cpp: gzip, zip or raw by the first bytes) on any file.
#include "../../examples/common/files.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = aft::fuzz::input_file(data, size, ".gz");
  aft::fuzz::expect_result_or_error([&] { aft::files::read_gzip(path); });
  aft::fuzz::expect_result_or_error([&] { aft::files::read_data_file(path); });
  return 0;
}
