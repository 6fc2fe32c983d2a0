// tests/fuzz/fuzz_safetensors.cpp: the safetensors/checkpoint header reader
// (nn/run/safetensors_header.cpp) on any file: the checked entries and every byte they span,
// or aft::Error. Reading each entry's span as load_safetensors does checks that the offsets
// it accepted lie inside the file.
#include <vector>

#include "fuzz_common.h"
#include "nn/run/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = aft::fuzz::input_file(data, size, ".safetensors");
  aft::fuzz::expect_result_or_error([&] {
    aft::nn::safetensors::InputFile file(path);
    aft::nn::safetensors::Header h = aft::nn::safetensors::read_header(file, path);
    for (const auto& e : h.entries) {
      std::vector<uint8_t> bytes(static_cast<size_t>(e.end - e.begin));
      if (!bytes.empty()) file.read(h.data_start + e.begin, bytes.data(), bytes.size());
    }
  });
  return 0;
}
