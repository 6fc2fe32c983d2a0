// nn/init.h: weight initialisation, in place, from an explicit generator (or the default one).
// Layers call these in their constructors with the defaults below; a user can re-initialise
// any parameter the same way (under NoGradGuard, which these take care of).
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace aft::nn::init {

// The defaults used by the layers of nn/ (GPT-2 / the AFT paper's conventions).
inline constexpr double kProjectionStd = 0.02;   // Linear weights, Embedding tables
inline constexpr double kPositionBiasStd = 0.01;  // factorised AFT position bias u, v

void normal_(const Tensor& t, double mean, double std, Generator* gen = nullptr);
void uniform_(const Tensor& t, double low, double high, Generator* gen = nullptr);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

}  // namespace aft::nn::init
