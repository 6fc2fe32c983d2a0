// tests/fuzz/fuzz_jpeg.cpp: the JPEG wrapper (examples/imagenet/jpeg.cpp) and the training and
// evaluation transforms on top (transforms.cpp) on any bytes: an image of the size the header
// gave (at the DCT scale asked for), finite normalised pixels, or aft::Error. The DCT scale
// comes from the input's size, so every scale is exercised.
#include <cmath>
#include <cstdlib>
#include <vector>

#include "../../examples/imagenet/jpeg.h"
#include "../../examples/imagenet/transforms.h"
#include "fuzz_common.h"

using namespace aft::imagenet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int scale = 1 + static_cast<int>(size % 8);
  aft::fuzz::expect_result_or_error([&] {
    JpegInfo info = read_jpeg_info(data, size, "fuzz");
    DecodeResult r = decode_jpeg(data, size, "fuzz", scale);
    if (r.image.width != scaled_size(info.width, scale) || r.image.height != scaled_size(info.height, scale) ||
        r.image.rgb.size() != static_cast<size_t>(r.image.width) * r.image.height * 3)
      std::abort();
  });
  for (bool train : {true, false}) {
    TransformConfig t;
    t.size = 8;
    t.train = train;
    std::vector<float> out(8 * 8 * 3);
    aft::fuzz::expect_result_or_error([&] {
      load_transformed(data, size, "fuzz", t, 1, 0, size, out.data());
      for (float v : out)
        if (!std::isfinite(v)) std::abort();
    });
  }
  return 0;
}
