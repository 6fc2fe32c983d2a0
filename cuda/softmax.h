// cuda/softmax.h: the launchers of cuda/softmax.cu (softmax and log_softmax along one dim),
// called by ops/softmax.cpp.
#pragma once

#include "cuda/desc.h"

namespace aft::cuda {

void softmax_forward(const TensorDesc& x, const TensorDesc& y, int dim, bool log);
// dx from the forward's output y and the gradient g.
void softmax_backward(const TensorDesc& y, const TensorDesc& g, const TensorDesc& dx, int dim, bool log);

}  // namespace aft::cuda
