// tests/fuzz/fuzz_cifar10.cpp: the CIFAR-10 reader (examples/cifar10/data.cpp) on any bytes: as
// one batch file (parse_batch), and as the distributed archive (load_cifar10 on a .tar or
// .tar.gz), giving images whose labels are 0..9, or aft::Error.
#include <cstdlib>
#include <span>

#include "../../examples/cifar10/data.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aft::fuzz::expect_result_or_error([&] {
    aft::cifar10::Images im = aft::cifar10::parse_batch(std::span<const uint8_t>(data, size), "fuzz");
    for (uint8_t l : im.labels)
      if (l > 9) std::abort();
  });
  const std::string path = aft::fuzz::input_file(data, size, ".tar.gz");
  aft::fuzz::expect_result_or_error([&] {
    aft::cifar10::Dataset d = aft::cifar10::load_cifar10(path, true);
    if (d.test.size() == 0 || d.train.pixels.size() != static_cast<size_t>(d.train.size() * aft::cifar10::kDims))
      std::abort();
  });
  return 0;
}
