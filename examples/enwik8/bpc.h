// examples/enwik8/bpc.h: bits per character of a split, and sampling text.
//
// Scoring: every byte of the split but the first is predicted once. Windows of context + 1
// bytes start every `stride` bytes; a window scores only the targets that no earlier window
// scored, so each byte is predicted with at least context − stride bytes before it (all of them
// near the start of the split). The sum of −log2 p runs in double precision:
//   bpc = Σ −log2 p(x_i | x_<i) / count.
#pragma once

#include <cstdio>
#include <functional>
#include <span>
#include <string>

#include "../common/sampling.h"
#include "nn/aft_lm.h"

namespace aft::enwik8 {

struct BpcOptions {
  int64_t stride = 0;     // 0: context / 2
  int64_t batch = 8;      // windows per forward pass
  int64_t max_bytes = 0;  // score only the first N bytes of the split (0: all)
  bool progress = false;  // report progress on stderr
};

struct BpcResult {
  double bpc = 0;
  double nats = 0;     // Σ −ln p
  int64_t count = 0;   // bytes scored
  double seconds = 0;
};

// forward: tokens [B, T] int64 (on `device`) -> logits [B, T, 256].
BpcResult bits_per_char(const std::function<Tensor(const Tensor&)>& forward, int64_t context,
                        std::span<const uint8_t> bytes, Device device, BpcOptions opt);
BpcResult bits_per_char(const nn::AFTLM& model, std::span<const uint8_t> bytes, Device device, BpcOptions opt);

struct SampleStats {
  int64_t generated = 0;
  double seconds = 0;
};
// Feeds the prompt through the model's running state, then draws `length` bytes (temperature,
// top-k) and writes them to `out` as they come. When the context is full, the state restarts
// from the last context/2 bytes.
SampleStats sample(const nn::AFTLM& model, const std::string& prompt, int64_t length, double temperature,
                   int64_t top_k, Device device, Generator& gen, std::FILE* out);

// Drawing a byte from logits: the examples' shared sampler (examples/common/sampling.h).
using sampling::sample_logits;

}  // namespace aft::enwik8
