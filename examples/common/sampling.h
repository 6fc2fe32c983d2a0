// examples/common/sampling.h: drawing a symbol from a model's logits, with temperature and
// top-k, shared by the example programs (enwik8 samples bytes, cifar10 sub-pixels).
//
//   p_i ∝ exp(l_i / temperature) over the top_k largest logits (all when top_k is 0), and the
//   symbol is the first i with u·Σp < p_0 + … + p_i for a uniform u in [0, 1).
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace aft::sampling {

// One draw from host logits, with the uniform u ∈ [0, 1) given.
int sample_logits(std::vector<double> logits, double temperature, int64_t top_k, double u);
// One draw from host logits; u comes from gen (one number).
int sample_logits(std::vector<double> logits, double temperature, int64_t top_k, Generator& gen);
// One draw per row of logits [B, V] (any device): B uniforms from gen in one call, row b uses
// the b-th. Returns B symbols.
std::vector<int64_t> sample_rows(const Tensor& logits, double temperature, int64_t top_k, Generator& gen);

}  // namespace aft::sampling
