// cuda/optim.h: the launchers of cuda/optim.cu, the fused multi-tensor optimiser steps and
// global-norm clipping, called by nn/optim/optim.cpp. The update formulas are
// core/math/optim.h, shared with the CPU loops.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/math/optim.h"

namespace aft::cuda {

void adamw_step(DType dt, const optim_math::ParamSlot* slots, int count, double b1, double b2, double eps,
                double bc2_sqrt);
void sgd_step(DType dt, const optim_math::ParamSlot* slots, int count, double momentum, bool nesterov);
// partials[i] (device doubles) = partial sums of squares of the gradients, summed in order by
// sum_partials into *out.
void grad_sq_norm_partials(DType dt, const optim_math::ParamSlot* slots, int count, double* partials);
void sum_partials(const double* partials, int64_t n, double* out);
void scale_grads(DType dt, const optim_math::ParamSlot* slots, int count, double coef);

}  // namespace aft::cuda
