// core/tensor.h: aft::Tensor, an n-d view (shape, strides, offset, dtype) of a shared Storage.
//
// A Tensor is a cheap handle: copies share the same TensorImpl (so requires_grad_() and the
// accumulated .grad() are seen through every copy). Views (reshape, permute, narrow, expand...)
// make a new TensorImpl over the same Storage; nothing is copied. Strides and the offset are
// counted in elements. A stride of 0 is how expand() broadcasts without copying.
//
// The view and math methods are recorded on the autograd tape (autograd/tape.h); they are
// declared here for convenience and defined in ops/ beside the other ops.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/storage.h"

namespace aft {

namespace autograd {
struct AutogradMeta;
}
class Generator;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;     // in elements
  int64_t offset = 0;  // in elements, from storage->data()
  DType dtype = kFloat32;
  std::shared_ptr<autograd::AutogradMeta> autograd;  // null: not tracked by autograd
};

// What a factory makes: zeros({2, 3}, kFloat64), zeros({2, 3}, Device::cuda()),
// zeros({2, 3}, TensorOptions(kFloat64).with_device(dev).with_requires_grad()).
struct TensorOptions {
  DType dtype = kFloat32;
  Device device = kCPU;
  bool requires_grad = false;

  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}    // NOLINT(google-explicit-constructor)
  TensorOptions(Device d) : device(d) {}  // NOLINT(google-explicit-constructor)
  TensorOptions(DType d, Device dev) : dtype(d), device(dev) {}
  TensorOptions with_dtype(DType d) const { auto o = *this; o.dtype = d; return o; }
  TensorOptions with_device(Device d) const { auto o = *this; o.device = d; return o; }
  TensorOptions with_requires_grad(bool r = true) const { auto o = *this; o.requires_grad = r; return o; }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // True when both handles are the same tensor (not merely equal values).
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata
  const Shape& shape() const { return checked()->shape; }
  const Strides& strides() const { return checked()->strides; }
  int ndim() const { return checked()->shape.ndim(); }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t numel() const { return checked()->shape.numel(); }
  int64_t offset() const { return checked()->offset; }
  DType dtype() const { return checked()->dtype; }
  Device device() const { return checked()->storage->device(); }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_pinned() const { return checked()->storage->pinned(); }  // pinned host memory
  size_t element_size() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return checked()->storage; }

  // Pointer to element 0 (storage data + offset). data<T>() checks that T matches the dtype.
  void* raw_data() const;
  template <class T>
  T* data() const {
    AFT_CHECK(dtype() == dtype_of<T>, "data<{}>(): tensor has dtype {}", dtype_name(dtype_of<T>),
              dtype_name(dtype()));
    return static_cast<T*>(raw_data());
  }

  // ---- views: share storage, recorded on the tape (ops/views.cpp)
  Tensor view(const Shape& shape) const;     // needs compatible strides; one extent may be -1
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // transpose of a 2-d tensor
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;  // every extent-1 dim
  Tensor expand(const Shape& shape) const;  // broadcast with stride 0; -1 keeps an extent

  // ---- copies and conversions (ops/copy.cpp)
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(Device device) const;  // itself when already there
  Tensor to(DType dtype) const;
  Tensor cpu() const { return to(kCPU); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }
  // A contiguous copy in pinned host memory (itself when already pinned and contiguous): its
  // copies to a CUDA device are queued without waiting. Until the device has read it
  // (cuda::synchronize(), or any copy back to the host), do not write to it through data<T>();
  // copy_, fill_ and zero_ into it wait by themselves. Not recorded by autograd.
  Tensor pin_memory() const;

  // ---- in-place (not recorded; refused on tensors that need grad while grad mode is on)
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype, any device pair
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- element access (copies to the host for CUDA tensors; meant for tests and printing)
  template <class T = double>
  T item() const;
  template <class T = double>
  T at(std::initializer_list<int64_t> index) const;
  template <class T = double>
  std::vector<T> to_vector() const;

  // ---- autograd (autograd/tape.cpp)
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;
  Tensor grad() const;              // undefined until backward() reaches this leaf
  void set_grad(const Tensor& g) const;
  void zero_grad() const;            // drops the accumulated gradient
  Tensor& retain_grad();             // keep the gradient of a non-leaf too
  Tensor detach() const;             // same storage, not tracked
  // Makes this leaf refer to src's data (storage, geometry, dtype) while keeping its identity:
  // every handle, and requires_grad, stay; the accumulated gradient is dropped. Module::to()
  // and load_state_dict() move parameters this way.
  void set_data(const Tensor& src) const;
  void backward(const Tensor& gradient = Tensor()) const;

 private:
  TensorImpl* checked() const {
    AFT_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
    return impl_.get();
  }
  std::shared_ptr<TensorImpl> impl_;
};

// ---- low-level construction (no autograd)
// A new dense tensor; memory uninitialised.
Tensor empty(const Shape& shape, TensorOptions opts = {});
// A new dense CPU tensor in pinned host memory (cuda/runtime.h; ordinary host memory in the
// emulator and without CUDA); uninitialised. For the batches a data loader sends to the GPU.
Tensor empty_pinned(const Shape& shape, DType dtype = kFloat32);
// A view of t's storage with the given geometry (no checks beyond bounds; not recorded).
Tensor as_strided(const Tensor& t, const Shape& shape, const Strides& strides, int64_t offset);

// ---- factories
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor scalar_tensor(double value, TensorOptions opts = {});  // 0-d
// [start, end) by step, 1-d. Int64 unless opts say otherwise.
Tensor arange(double start, double end, double step = 1.0, TensorOptions opts = kInt64);
Tensor arange(int64_t end, TensorOptions opts = kInt64);
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts = dtype_of<T>);
template <class T>
Tensor from_vector(const std::vector<T>& values) {
  return from_vector<T>(values, Shape{static_cast<int64_t>(values.size())});
}
// Random tensors from a counter-based Philox stream (core/random.h): the same seed gives the
// same numbers on any thread count and on either device. gen = nullptr: the default generator.
Tensor randn(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
Tensor rand(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);  // [0, 1)
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts = kInt64,
               Generator* gen = nullptr);  // [low, high)

Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

}  // namespace aft
