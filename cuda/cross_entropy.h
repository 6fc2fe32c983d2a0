// cuda/cross_entropy.h: the launchers of cuda/cross_entropy.cu, called by
// ops/cross_entropy.cpp (which documents the arguments and the reduction modes).
#pragma once

#include <cstdint>

#include "cuda/desc.h"

namespace aft::cuda {

void cross_entropy_forward(const TensorDesc& x, const TensorDesc& target, const TensorDesc& lse,
                           const TensorDesc& out, const TensorDesc& loss_acc, const TensorDesc& count,
                           const TensorDesc& err, int64_t ignore_index, double label_smoothing, int mode);
void cross_entropy_backward(const TensorDesc& x, const TensorDesc& target, const TensorDesc& lse,
                            const TensorDesc& g, const TensorDesc& count, const TensorDesc& dx,
                            int64_t ignore_index, double label_smoothing, int mode);

}  // namespace aft::cuda
