// ops/copy.cpp: copies and conversions: copy_ (any dtype, any device pair, broadcasting),
// fill_, contiguous, clone, to(dtype), to(device), pin_memory. clone/to are differentiable (the
// gradient is copied back); copy_ and fill_ are in-place and not recorded.
// Host to device copies wait for the transfer, except from a pinned source that needs no
// conversion: that one is queued (cuda::copy_h2d_async) and the source must stay unwritten until
// the device has read it; copy_ into a pinned tensor therefore synchronises first.
// A source that overlaps the destination in memory (x[1:].copy_(x[:-1]), x.t().copy_(x)) is
// first copied to a temporary, on both devices: copy_ then reads every source element before it
// writes any (on a GPU, cudaMemcpyAsync and the copy kernel over overlapping ranges are
// undefined).
#include "autograd/tape.h"
#include "cuda/elementwise.h"
#include "cuda/runtime.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

void check_inplace(const char* op, const Tensor& t) {
  AFT_CHECK(!(autograd::grad_enabled() && t.requires_grad()),
            "{}: in-place op on a tensor of shape {} that requires grad; run it under "
            "NoGradGuard or on detach()", op, t.shape());
}

void cpu_copy(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), "copy_", [&]<class D>() {
    dispatch_all(src.dtype(), "copy_", [&]<class S>() {
      cpu_map<D, S>(dst, [](S v) { return static_cast<D>(v); }, src);
    });
  });
}

// The bytes [lo, hi) of its storage that t can touch (lo == hi when t is empty).
std::pair<int64_t, int64_t> byte_span(const Tensor& t) {
  int64_t lo = t.offset(), hi = t.offset();
  for (int d = 0; d < t.ndim(); ++d) {
    if (t.shape()[d] == 0) return {0, 0};
    const int64_t reach = t.strides()[d] * (t.shape()[d] - 1);
    (reach < 0 ? lo : hi) += reach;
  }
  const int64_t es = static_cast<int64_t>(t.element_size());
  return {lo * es, (hi + 1) * es};
}

bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage() != b.storage()) return false;
  const auto [alo, ahi] = byte_span(a);
  const auto [blo, bhi] = byte_span(b);
  return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_", *this, "destination");
  check_defined("copy_", src, "source");
  check_inplace("copy_", *this);
  AFT_CHECK(broadcast_shapes(src.shape(), shape(), "copy_") == shape(),
            "copy_: source of shape {} does not broadcast to the destination shape {}", src.shape(),
            shape());
  if (overlaps(*this, src)) return copy_(src.detach().clone());
  const Device dd = device(), sd = src.device();
  if (is_pinned()) cuda::synchronize();  // a queued copy may still read this buffer
  if (dd.is_cpu() && sd.is_cpu()) {
    cpu_copy(*this, src);
  } else if (dd.is_cpu()) {
    // Device to host: bring the source over as a dense block (straight into the destination when
    // it is one of the same dtype and shape), then convert/scatter on the host.
    Tensor s = src.detach().contiguous();
    if (s.dtype() == dtype() && s.shape() == shape() && is_contiguous()) {
      cuda::copy_d2h(raw_data(), s.raw_data(), numel() * element_size());
    } else {
      Tensor host = empty(s.shape(), s.dtype());
      cuda::copy_d2h(host.raw_data(), s.raw_data(), s.numel() * s.element_size());
      cpu_copy(*this, host);
    }
  } else if (sd.is_cpu()) {
    // Host to device: convert and densify on the host, one transfer, then place on the device.
    Tensor s = src.detach();
    if (s.shape() != shape() || s.dtype() != dtype() || !s.is_contiguous()) {
      Tensor h = empty(shape(), dtype());
      cpu_copy(h, s);
      s = h;
    }
    if (is_contiguous() && s.is_pinned()) {
      cuda::copy_h2d_async(raw_data(), s.raw_data(), numel() * element_size());
    } else if (is_contiguous()) {
      cuda::copy_h2d(raw_data(), s.raw_data(), numel() * element_size());
    } else {
      Tensor staged = empty(shape(), {dtype(), dd});
      cuda::copy_h2d(staged.raw_data(), s.raw_data(), numel() * element_size());
      copy_(staged);
    }
  } else {
    AFT_CHECK(dd == sd, "copy_: from {} to {} is not supported; go through the host", sd, dd);
    if (src.dtype() == dtype() && src.shape() == shape() && src.is_contiguous() && is_contiguous())
      cuda::copy_d2d(raw_data(), src.raw_data(), numel() * element_size());
    else
      AFT_CUDA_CALL(cuda::copy(desc(*this), desc(src)));
  }
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_", *this);
  check_inplace("fill_", *this);
  if (is_cpu()) {
    if (is_pinned()) cuda::synchronize();  // as in copy_: a queued upload may still read it
    dispatch_all(dtype(), "fill_", [&]<class T>() {
      T v = static_cast<T>(value);
      cpu_map<T>(*this, [v]() { return v; });
    });
  } else if (is_contiguous()) {  // on the device, no host scalar (int64 and bool too)
    AFT_CUDA_CALL(cuda::fill_contiguous(raw_data(), numel(), dtype(), value));
  } else {
    // A strided CUDA tensor: broadcast a one-element tensor holding the value.
    Tensor one = empty(Shape{}, {dtype(), kCPU});
    dispatch_all(dtype(), "fill_", [&]<class T>() { *one.data<T>() = static_cast<T>(value); });
    copy_(one);
    return *this;
  }
  storage()->bump_version();
  return *this;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check_defined("clone", *this);
  Tensor out = empty(shape(), {dtype(), device()});
  {
    autograd::NoGradGuard ng;
    out.copy_(*this);
  }
  if (autograd::needs_grad(*this))
    autograd::record("clone", {*this}, {out}, [](const autograd::TensorList& g) {
      return autograd::TensorList{g[0]};
    });
  return out;
}

Tensor Tensor::to(DType dt) const {
  check_defined("to", *this);
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), {dt, device()});
  {
    autograd::NoGradGuard ng;
    out.copy_(*this);
  }
  DType from = dtype();
  if (is_floating(dt) && autograd::needs_grad(*this))
    autograd::record("to_dtype", {*this}, {out}, [from](const autograd::TensorList& g) {
      return autograd::TensorList{g[0].to(from)};
    });
  return out;
}

Tensor Tensor::pin_memory() const {
  check_defined("pin_memory", *this);
  AFT_CHECK(is_cpu(), "pin_memory: the tensor of shape {} is on {}; only host tensors can be pinned", shape(),
            device());
  if (is_pinned() && is_contiguous()) return *this;
  Tensor out = empty_pinned(shape(), dtype());
  out.copy_(detach());
  return out;
}

Tensor Tensor::to(Device dev) const {
  check_defined("to", *this);
  if (dev == device()) return *this;
  if (dev.is_cuda()) cuda::require_device(dev.index, "to");
  Tensor out = empty(shape(), {dtype(), dev});
  {
    autograd::NoGradGuard ng;
    out.copy_(*this);
  }
  Device from = device();
  if (autograd::needs_grad(*this))
    autograd::record("to_device", {*this}, {out}, [from](const autograd::TensorList& g) {
      return autograd::TensorList{g[0].to(from)};
    });
  return out;
}

}  // namespace aft
