// cuda/kernel_common.h: small pieces the kernel files share: the
// grid-stride loop (one thread per item, 256 threads a block) and the dtype dispatch of a
// launcher.
#pragma once

#include <cstdint>

#include "cuda/desc.h"
#include "cuda/launch.h"

namespace aft::cuda {

constexpr int kLoopThreads = 256;

// Blocks of a grid-stride loop over n items: one item per thread up to 65535 blocks, beyond
// that each thread takes several.
inline unsigned loop_blocks(int64_t n) {
  const int64_t b = (n + kLoopThreads - 1) / kLoopThreads;
  return static_cast<unsigned>(b < 65535 ? b : 65535);
}

}  // namespace aft::cuda

// for (i = this thread's first item; i < n; i += threads in the grid)
#define AFT_KERNEL_LOOP(i, n)                                                               \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

namespace aft::cuda {

// f(T{}) with T = float or double after dt (the op has checked the dtype already).
template <class F>
void with_float_type(DType dt, F&& f) {
  if (dt == DType::Float32) f(float{});
  else if (dt == DType::Float64) f(double{});
  else raise_error("cuda kernel: only float32 and float64 tensors are supported");
}

// f(T{}) with T = float, double, int64_t or bool after dt.
template <class F>
void with_any_type(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float{}); break;
    case DType::Float64: f(double{}); break;
    case DType::Int64: f(int64_t{}); break;
    case DType::Bool: f(bool{}); break;
    default: raise_error("cuda kernel: unsupported dtype");
  }
}

}  // namespace aft::cuda
