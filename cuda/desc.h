// cuda/desc.h: TensorDesc, the plain-data view of a tensor that CUDA launchers receive.
//
// The .cu files see no aft::Tensor (nvcc then never parses fmt or the autograd headers): the
// op in ops/ checks its arguments, allocates the outputs and passes descriptors. Extents and
// strides are in elements, as in Tensor.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace aft::cuda {

struct TensorDesc {
  void* data = nullptr;
  DType dtype = DType::Float32;
  int ndim = 0;
  int64_t shape[8] = {};
  int64_t strides[8] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  bool is_contiguous() const {
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] == 0) return true;
      if (shape[i] != 1 && strides[i] != expect) return false;
      expect *= shape[i];
    }
    return true;
  }
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
};

}  // namespace aft::cuda
