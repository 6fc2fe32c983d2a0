// ops/op_utils.h: argument checks and small helpers shared by the op implementations.
#pragma once

#include "core/dispatch.h"
#include "core/format.h"
#include "core/tensor.h"
#include "cuda/desc.h"

namespace aft {

inline void check_defined(const char* op, const Tensor& t, const char* what = "input") {
  AFT_CHECK(t.defined(), "{}: {} is an undefined tensor", op, what);
}

inline void check_float(const char* op, const Tensor& t) {
  check_defined(op, t);
  AFT_CHECK(is_floating(t.dtype()), "{}: expected a float32 or float64 tensor, got {} of shape {}",
            op, t.dtype(), t.shape());
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  AFT_CHECK(a.dtype() == b.dtype(), "{}: dtypes differ: {} {} and {} {}", op, a.dtype(), a.shape(),
            b.dtype(), b.shape());
}

inline void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  AFT_CHECK(a.device() == b.device(),
            "{}: tensors are on different devices: {} on {} and {} on {} (move one with to())", op,
            a.shape(), a.device(), b.shape(), b.device());
}

// Both defined, float, same dtype, same device.
inline void check_float_pair(const char* op, const Tensor& a, const Tensor& b) {
  check_float(op, a);
  check_float(op, b);
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
}

// Throws NotImplementedError "<op>: not implemented on CUDA" (core/error.h): the op has no CUDA
// kernel, or this build has no CUDA backend.
[[noreturn]] inline void no_cuda_kernel(const char* op) { throw NotImplementedError(op, "CUDA"); }

// The plain-data description of a tensor that CUDA launchers take (cuda/desc.h).
inline cuda::TensorDesc desc(const Tensor& t) {
  cuda::TensorDesc d;
  d.data = t.raw_data();
  d.dtype = t.dtype();
  d.ndim = t.ndim();
  for (int i = 0; i < t.ndim(); ++i) {
    d.shape[i] = t.shape()[i];
    d.strides[i] = t.strides()[i];
  }
  return d;
}

// desc(t), or an empty descriptor (data == nullptr) for an undefined (absent) operand.
inline cuda::TensorDesc desc_or_null(const Tensor& t) { return t.defined() ? desc(t) : cuda::TensorDesc{}; }

// Sums a gradient of a broadcast result back to the shape of the input that was broadcast.
Tensor sum_to(const Tensor& grad, const Shape& shape);

// Strides (in elements) under which t reads as a tensor of shape `to` (t broadcast to it).
Strides broadcast_strides(const Tensor& t, const Shape& to);

}  // namespace aft

// AFT_CUDA_CALL(cuda::kernel(...)): calls a launcher of cuda/ in builds that have CUDA (real or
// emulated). In an AFT_CUDA=OFF build no CUDA tensor can exist, so the call is compiled out.
#if AFT_WITH_CUDA
#define AFT_CUDA_CALL(...) __VA_ARGS__
#else
#define AFT_CUDA_CALL(...) ::aft::no_cuda_kernel("cuda")
#endif
