// aft.h: the whole public API of aft in one include: tensors and devices (core/), autograd,
// every op (ops/ops.h), the CUDA device's host side (cuda/runtime.h, cuda/blas.h), modules and
// AFT layers (nn/), optimisers and schedules (nn/optim/), and the run infrastructure: trainer,
// checkpoints, metrics, plots, JSON (nn/run/). Kernel-level headers (core/math/, core/gemm/,
// cuda/*.h launchers, cuda/emu/) are internal: included where needed, not here.
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
#include "nn/aft_layers.h"
#include "nn/aft_lm.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/optim/optim.h"
#include "nn/optim/schedule.h"
#include "nn/run/checkpoint.h"
#include "nn/run/json.h"
#include "nn/run/metrics.h"
#include "nn/run/plot.h"
#include "nn/run/trainer.h"
#include "ops/ops.h"
