// examples/cifar10/batches.cpp: augmentation and the training batches of the image model (see
// data.h): flips and shifts drawn from the run's generator, and the shifted-right model input.
#include <algorithm>

#include "core/error.h"
#include "core/tensor.h"
#include "data.h"

namespace aft::cifar10 {

void augment(const uint8_t* in, bool flip, int shift, uint8_t* out) {
  for (int64_t y = 0; y < kSide; ++y)
    for (int64_t x = 0; x < kSide; ++x) {
      const uint8_t* src = in + 3 * (y * kSide + (flip ? kSide - 1 - x : x));
      uint8_t* dst = out + 3 * (y * kSide + x);
      for (int c = 0; c < 3; ++c) dst[c] = static_cast<uint8_t>(std::clamp(src[c] + shift, 0, 255));
    }
}

std::vector<int64_t> shift_right(std::span<const uint8_t> images, int64_t B) {
  AFT_CHECK(static_cast<int64_t>(images.size()) == B * kDims, "shift_right: {} bytes for {} images", images.size(), B);
  std::vector<int64_t> x(static_cast<size_t>(B * kDims));
  for (int64_t b = 0; b < B; ++b) {
    x[b * kDims] = kSOS;
    for (int64_t t = 1; t < kDims; ++t) x[b * kDims + t] = images[b * kDims + t - 1];
  }
  return x;
}

Batch make_batch(const Images& images, std::span<const int64_t> indices, Generator* gen) {
  const int64_t B = static_cast<int64_t>(indices.size());
  AFT_CHECK(B >= 1, "make_batch: no images");
  std::vector<int64_t> flips, shifts;
  if (gen) {
    flips = randint(0, 2, {B}, kInt64, gen).to_vector<int64_t>();
    shifts = randint(-kMaxShift, kMaxShift + 1, {B}, kInt64, gen).to_vector<int64_t>();
  }
  Batch out;
  out.images.resize(static_cast<size_t>(B * kDims));
  for (int64_t b = 0; b < B; ++b) {
    AFT_CHECK(indices[b] >= 0 && indices[b] < images.size(), "make_batch: image {} of {}", indices[b], images.size());
    uint8_t* dst = out.images.data() + b * kDims;
    if (gen) augment(images.image(indices[b]), flips[b] != 0, static_cast<int>(shifts[b]), dst);
    else std::copy_n(images.image(indices[b]), kDims, dst);
  }
  out.inputs = shift_right(out.images, B);
  out.targets.assign(out.images.begin(), out.images.end());
  return out;
}

}  // namespace aft::cifar10
