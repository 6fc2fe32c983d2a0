// examples/cifar10/bpd.h: bits per dimension of a set of images, and drawing images from the
// model (unconditionally, or completing given top halves).
//
// Bits per dimension: every sub-pixel of every image is predicted once, from the ones before it
// (the first from SOS alone); the sum of −log2 p runs in double precision:
//   bpd = Σ_images Σ_{t < 3072} −log2 p(s_t | s_<t) / (images · 3072)
// and per channel c the same sum over the sub-pixels t ≡ c (mod 3), divided by images · 1024.
// The model's logits have a 257th entry (SOS, never a target): the distribution is the softmax
// of the first 256 only.
#pragma once

#include <functional>
#include <vector>

#include "data.h"
#include "nn/aft_lm.h"

namespace aft::cifar10 {

struct BpdOptions {
  int64_t batch = 8;       // images per forward pass
  int64_t max_images = 0;  // score only the first N images (0: all)
  bool progress = false;   // report progress on stderr
};

struct BpdResult {
  double bpd = 0;
  double channel_bpd[3] = {0, 0, 0};  // R, G, B
  double nats = 0;                    // Σ −ln p
  int64_t images = 0;
  double seconds = 0;
};

// forward: tokens [B, 3072] int64 (on `device`) -> logits [B, 3072, V] with V >= 256.
BpdResult bits_per_dim(const std::function<Tensor(const Tensor&)>& forward, const Images& images, Device device,
                       BpdOptions opt);
BpdResult bits_per_dim(const nn::AFTLM& model, const Images& images, Device device, BpdOptions opt);

// The 256 intensity logits of the model's output (drops the SOS column): [..., V] -> [..., 256].
Tensor intensity_logits(const Tensor& logits);

struct SampleOptions {
  double temperature = 1.0;
  int64_t top_k = 0;      // 0: all 256
  bool progress = false;  // report progress on stderr
};

struct SampleStats {
  int64_t images = 0, steps = 0;  // images drawn together; forward_step calls
  double seconds = 0;
};

// Draws B images together, one sub-pixel at a time with the model's running state
// (AFTLM::forward_step: no recomputation of the prefix). prefix [B, keep] holds the first `keep`
// sub-pixels of each image (keep = 0: unconditional samples); they are fed as they are and the
// remaining 3072 − keep sub-pixels are sampled. Returns the images [B, 3072] in sequence order.
std::vector<uint8_t> generate(const nn::AFTLM& model, std::span<const uint8_t> prefix, int64_t B, int64_t keep,
                              Device device, Generator& gen, SampleOptions opt, SampleStats* stats = nullptr);

}  // namespace aft::cifar10
