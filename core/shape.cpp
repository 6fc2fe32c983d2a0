// core/shape.cpp: shape arithmetic (see shape.h).
#include "core/shape.h"

#include "core/format.h"

namespace aft {

Shape Shape::filled(int n, int64_t value) {
  AFT_CHECK(n >= 0 && n <= kMaxDims, "shape: at most {} dimensions, got {}", kMaxDims, n);
  Shape s;
  s.n_ = n;
  for (int i = 0; i < n; ++i) s.d_[i] = value;
  return s;
}

void Shape::push_back(int64_t v) {
  AFT_CHECK(n_ < kMaxDims, "shape: at most {} dimensions", kMaxDims);
  d_[n_++] = v;
}

void Shape::insert(int pos, int64_t v) {
  AFT_CHECK(n_ < kMaxDims, "shape: at most {} dimensions", kMaxDims);
  AFT_ASSERT(pos >= 0 && pos <= n_);
  for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}

void Shape::erase(int pos) {
  AFT_ASSERT(pos >= 0 && pos < n_);
  for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < n_; ++i) n *= d_[i];
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides s = Shape::filled(shape.ndim(), 1);
  int64_t acc = 1;
  for (int i = shape.ndim() - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  int n = std::max(a.ndim(), b.ndim());
  Shape out = Shape::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    int ia = a.ndim() - n + i, ib = b.ndim() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    AFT_CHECK(da == db || da == 1 || db == 1, "{}: shapes cannot be broadcast: {} and {}", op, a, b);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int wrap_dim(int64_t dim, int ndim, const char* op) {
  int64_t lo = -std::max(ndim, 1), hi = std::max(ndim, 1) - 1;
  AFT_CHECK(dim >= lo && dim <= hi, "{}: dim {} out of range for a {}-d tensor", op, dim, ndim);
  return static_cast<int>(dim < 0 ? dim + std::max(ndim, 1) : dim);
}

}  // namespace aft
