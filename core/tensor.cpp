// core/tensor.cpp: Tensor metadata, raw construction, factories and element access.
#include "core/tensor.h"

#include <cmath>
#include <cstring>

#include "core/dispatch.h"
#include "core/format.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "core/random.h"

namespace aft {

int64_t Tensor::size(int64_t dim) const { return shape()[wrap_dim(dim, ndim(), "size")]; }
int64_t Tensor::stride(int64_t dim) const { return strides()[wrap_dim(dim, ndim(), "stride")]; }

bool Tensor::is_contiguous() const {
  const Shape& sh = shape();
  const Strides& st = strides();
  int64_t expected = 1;
  for (int d = sh.ndim() - 1; d >= 0; --d) {
    if (sh[d] == 0) return true;
    if (sh[d] != 1 && st[d] != expected) return false;
    expected *= sh[d];
  }
  return true;
}

void* Tensor::raw_data() const {
  TensorImpl* t = checked();
  char* base = static_cast<char*>(t->storage->data());
  return base ? base + t->offset * static_cast<int64_t>(dtype_size(t->dtype)) : nullptr;
}

Tensor empty(const Shape& shape, TensorOptions opts) {
  for (int64_t e : shape)
    AFT_CHECK(e >= 0, "empty: negative extent in shape {}", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(shape.numel()) * dtype_size(opts.dtype), opts.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype;
  Tensor t(std::move(impl));
  if (opts.requires_grad) t.requires_grad_();
  return t;
}

Tensor empty_pinned(const Shape& shape, DType dtype) {
  for (int64_t e : shape)
    AFT_CHECK(e >= 0, "empty_pinned: negative extent in shape {}", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate_pinned(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor as_strided(const Tensor& t, const Shape& shape, const Strides& strides, int64_t offset) {
  AFT_ASSERT(shape.ndim() == strides.ndim());
  // Bounds: the lowest and highest element the view can touch must lie inside the storage.
  int64_t lo = offset, hi = offset;
  bool empty_view = false;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == 0) empty_view = true;
    int64_t span = (shape[d] - 1) * strides[d];
    (span < 0 ? lo : hi) += span;
  }
  int64_t cap = static_cast<int64_t>(t.storage()->nbytes() / t.element_size());
  AFT_ASSERT(empty_view || (lo >= 0 && hi < cap));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}

// ---- factories

Tensor full(const Shape& shape, double value, TensorOptions opts) {
  bool rg = opts.requires_grad;
  Tensor t = empty(shape, opts.with_requires_grad(false));
  t.fill_(value);
  if (rg) t.requires_grad_();
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1.0, opts); }
Tensor scalar_tensor(double value, TensorOptions opts) { return full(Shape{}, value, opts); }

Tensor empty_like(const Tensor& t) { return empty(t.shape(), {t.dtype(), t.device()}); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), {t.dtype(), t.device()}); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), {t.dtype(), t.device()}); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, {t.dtype(), t.device()}); }

Tensor arange(double start, double end, double step, TensorOptions opts) {
  AFT_CHECK(step != 0 && std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
            "arange: need finite start, end and a nonzero step, got ({}, {}, {})", start, end, step);
  double span = std::ceil((end - start) / step);
  int64_t n = span > 0 ? static_cast<int64_t>(span) : 0;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i) * step;
  return from_vector<double>(v, Shape{n}, opts);
}

Tensor arange(int64_t end, TensorOptions opts) { return arange(0.0, static_cast<double>(end), 1.0, opts); }

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts) {
  AFT_CHECK(static_cast<int64_t>(values.size()) == shape.numel(),
            "from_vector: {} values do not fill shape {} ({} elements)", values.size(), shape,
            shape.numel());
  Tensor t = empty(shape, TensorOptions(dtype_of<T>));
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  if (opts.dtype != dtype_of<T>) t = t.to(opts.dtype);
  if (opts.device != kCPU) t = t.to(opts.device);
  if (opts.requires_grad) t.requires_grad_();
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template <>
Tensor from_vector<bool>(const std::vector<bool>& values, const Shape& shape, TensorOptions opts) {
  std::vector<int64_t> v(values.begin(), values.end());
  return from_vector<int64_t>(v, shape, opts);
}

// ---- random factories: element i depends only on (seed, first counter, i); see philox.h.
namespace {

// Fills a contiguous CPU tensor: fn(block counter, words, first element, count in block).
template <class Fn>
void fill_random(Tensor& t, Generator* gen, int64_t per_block, Fn fn) {
  Generator& g = gen ? *gen : default_generator();
  int64_t n = t.numel();
  int64_t blocks = (n + per_block - 1) / per_block;
  uint64_t first = g.reserve(static_cast<uint64_t>(blocks));
  uint64_t seed = g.seed();
  parallel_for(0, blocks, 4096, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      philox::Words w = philox::philox4x32(first + static_cast<uint64_t>(b), seed);
      int64_t e0 = b * per_block;
      fn(w, e0, std::min(per_block, n - e0));
    }
  });
}

Tensor finish_random(Tensor t, TensorOptions opts) {
  if (opts.device != kCPU) t = t.to(opts.device);
  if (opts.requires_grad) t.requires_grad_();
  return t;
}

}  // namespace

Tensor rand(const Shape& shape, TensorOptions opts, Generator* gen) {
  Tensor t = empty(shape, TensorOptions(opts.dtype));
  dispatch_float(opts.dtype, "rand", [&]<class T>() {
    T* p = t.data<T>();
    if constexpr (std::is_same_v<T, float>) {
      fill_random(t, gen, 4, [&](const philox::Words& w, int64_t e0, int64_t c) {
        for (int64_t j = 0; j < c; ++j) p[e0 + j] = philox::uniform_f32(w.x[j]);
      });
    } else {
      fill_random(t, gen, 2, [&](const philox::Words& w, int64_t e0, int64_t c) {
        for (int64_t j = 0; j < c; ++j) p[e0 + j] = philox::uniform_f64(w.x[2 * j], w.x[2 * j + 1]);
      });
    }
  });
  return finish_random(t, opts);
}

Tensor randn(const Shape& shape, TensorOptions opts, Generator* gen) {
  Tensor t = empty(shape, TensorOptions(opts.dtype));
  dispatch_float(opts.dtype, "randn", [&]<class T>() {
    T* p = t.data<T>();
    if constexpr (std::is_same_v<T, float>) {
      fill_random(t, gen, 4, [&](const philox::Words& w, int64_t e0, int64_t c) {
        float z[4];
        philox::box_muller(philox::uniform_f32(w.x[0]), philox::uniform_f32(w.x[1]), &z[0], &z[1]);
        philox::box_muller(philox::uniform_f32(w.x[2]), philox::uniform_f32(w.x[3]), &z[2], &z[3]);
        for (int64_t j = 0; j < c; ++j) p[e0 + j] = z[j];
      });
    } else {
      fill_random(t, gen, 2, [&](const philox::Words& w, int64_t e0, int64_t c) {
        double z[2];
        philox::box_muller(philox::uniform_f64(w.x[0], w.x[1]), philox::uniform_f64(w.x[2], w.x[3]),
                           &z[0], &z[1]);
        for (int64_t j = 0; j < c; ++j) p[e0 + j] = z[j];
      });
    }
  });
  return finish_random(t, opts);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts, Generator* gen) {
  AFT_CHECK(high > low, "randint: empty range [{}, {})", low, high);
  AFT_CHECK(!opts.requires_grad, "randint: integer tensors cannot require grad");
  Tensor t = empty(shape, kInt64);
  int64_t* p = t.data<int64_t>();
  uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  // Two elements per block, 64 random bits each; the modulo bias is below range / 2^64.
  fill_random(t, gen, 2, [&](const philox::Words& w, int64_t e0, int64_t c) {
    for (int64_t j = 0; j < c; ++j) {
      uint64_t r = static_cast<uint64_t>(w.x[2 * j + 1]) << 32 | w.x[2 * j];
      p[e0 + j] = static_cast<int64_t>(static_cast<uint64_t>(low) + r % range);
    }
  });
  if (opts.dtype != kInt64) t = t.to(opts.dtype);
  return finish_random(t, opts.with_requires_grad(false));
}

// ---- element access

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(kCPU).contiguous();
  std::vector<T> out(static_cast<size_t>(c.numel()));
  dispatch_all(c.dtype(), "to_vector", [&]<class S>() {
    const S* p = c.data<S>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}

template <class T>
T Tensor::item() const {
  AFT_CHECK(numel() == 1, "item: tensor of shape {} has {} elements, not 1", shape(), numel());
  return to_vector<T>()[0];
}

template <class T>
T Tensor::at(std::initializer_list<int64_t> index) const {
  AFT_CHECK(static_cast<int>(index.size()) == ndim(), "at: {} indices for a tensor of shape {}",
            index.size(), shape());
  int64_t off = offset();
  int d = 0;
  for (int64_t i : index) {
    int64_t n = shape()[d];
    AFT_CHECK(i >= -n && i < n, "at: index {} out of range for dim {} of shape {}", i, d, shape());
    off += (i < 0 ? i + n : i) * strides()[d];
    ++d;
  }
  Tensor one = as_strided(*this, Shape{}, Strides{}, off);
  return one.item<T>();
}

#define AFT_INSTANTIATE_ACCESS(T)                                          \
  template std::vector<T> Tensor::to_vector<T>() const;                    \
  template T Tensor::item<T>() const;                                      \
  template T Tensor::at<T>(std::initializer_list<int64_t>) const;
AFT_INSTANTIATE_ACCESS(float)
AFT_INSTANTIATE_ACCESS(double)
AFT_INSTANTIATE_ACCESS(int64_t)
AFT_INSTANTIATE_ACCESS(int)
AFT_INSTANTIATE_ACCESS(bool)
#undef AFT_INSTANTIATE_ACCESS

namespace detail {
void assert_fail(const char* expr, const char* file, int line) {
  fmt::print(stderr, "aft: internal error: assertion `{}` failed at {}:{}\n", expr, file, line);
  std::abort();
}
}  // namespace detail

}  // namespace aft
