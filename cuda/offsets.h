// cuda/offsets.h: from a linear element index to the offsets of N operands that share one
// (broadcast) shape, for kernels over arbitrary strides. Operand 0 is usually the output;
// an input broadcast along a dim has stride 0 there.
//
//   OffsetCalc<3> oc = make_offsets<3>(out, {&out, &a, &b});
//   int64_t off[3]; oc.get(i, off);   // a[off[1]], b[off[2]] -> out[off[0]]
#pragma once

#include <cstdint>

#include "cuda/compat.h"
#include "cuda/desc.h"

namespace aft::cuda {

template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t shape[8] = {};
  int64_t strides[N][8] = {};

  __host__ __device__ void get(int64_t i, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t idx = i % shape[d];
      i /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

// Offsets over `shape`'s geometry for each operand, aligning operands at their last dim.
template <int N>
inline OffsetCalc<N> make_offsets(const TensorDesc& shape, const TensorDesc* const (&ops)[N]) {
  OffsetCalc<N> oc;
  oc.ndim = shape.ndim;
  for (int d = 0; d < shape.ndim; ++d) oc.shape[d] = shape.shape[d];
  for (int k = 0; k < N; ++k) {
    const TensorDesc& t = *ops[k];
    int lead = shape.ndim - t.ndim;
    for (int d = 0; d < shape.ndim; ++d) {
      int j = d - lead;
      oc.strides[k][d] = (j < 0 || t.shape[j] == 1) ? 0 : t.strides[j];
    }
  }
  return oc;
}

// True when every operand is dense with exactly `shape`'s extents (no broadcast).
template <int N>
inline bool all_dense(const TensorDesc& shape, const TensorDesc* const (&ops)[N]) {
  for (int k = 0; k < N; ++k) {
    const TensorDesc& t = *ops[k];
    if (t.ndim != shape.ndim || !t.is_contiguous()) return false;
    for (int d = 0; d < t.ndim; ++d)
      if (t.shape[d] != shape.shape[d]) return false;
  }
  return true;
}

}  // namespace aft::cuda
