// cuda/nn_elementwise.h: the launchers of cuda/nn_elementwise.cu, the elementwise layers:
// the sigmoid gate (ops/sigmoid_gate.cpp) and dropout (ops/dropout.cpp).
#pragma once

#include <cstdint>

#include "cuda/desc.h"

namespace aft::cuda {

// y = sigmoid(q) · x;  backward: dq = g · x · sigmoid'(q), dx = g · sigmoid(q) (either may be empty).
void sigmoid_gate_forward(const TensorDesc& q, const TensorDesc& x, const TensorDesc& y);
void sigmoid_gate_backward(const TensorDesc& g, const TensorDesc& q, const TensorDesc& x, const TensorDesc& dq,
                           const TensorDesc& dx);

// y = x · keep / (1 - p), keep drawn from Philox(seed, counter c0 + i) as on the CPU.
void dropout_apply(const TensorDesc& x, const TensorDesc& y, uint64_t seed, uint64_t c0, double p);

}  // namespace aft::cuda
