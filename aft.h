// aft.h: the whole public API of aft in one include.
//
//   #include <aft.h>
//   aft::Tensor x = aft::randn({4, 8}).requires_grad_();
//   aft::Tensor loss = aft::mean(aft::gelu(x));
//   loss.backward();
#pragma once

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "core/device.h"
#include "core/dispatch.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/format.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "cuda/blas.h"
#include "cuda/runtime.h"
#include "ops/ops.h"
