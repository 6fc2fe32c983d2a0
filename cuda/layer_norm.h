// cuda/layer_norm.h: the launchers of cuda/layer_norm.cu, called by ops/layer_norm.cpp.
#pragma once

#include <cstdint>

#include "cuda/desc.h"

namespace aft::cuda {

// The number of row slices whose partial dw, db sums (float64, in `work`) the backward adds in
// order; it depends on R only, so the bits depend on the shapes only.
int64_t layer_norm_grad_parts(int64_t R);
void layer_norm_forward(const TensorDesc& x, const TensorDesc& w, const TensorDesc& b, const TensorDesc& y,
                        const TensorDesc& mean, const TensorDesc& rstd, double eps);
void layer_norm_backward(const TensorDesc& x, const TensorDesc& w, const TensorDesc& mean, const TensorDesc& rstd,
                         const TensorDesc& g, const TensorDesc& dx, const TensorDesc& dw, const TensorDesc& db,
                         const TensorDesc& work);

}  // namespace aft::cuda
