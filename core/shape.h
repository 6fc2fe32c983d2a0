// core/shape.h: Shape, a small inline vector of up to 8 extents (also used for strides), and
// the shape arithmetic every op shares: element counts, contiguous strides, NumPy broadcasting,
// dimension wrapping.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "core/error.h"

namespace aft {

inline constexpr int kMaxDims = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(std::span<const int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }
  // n copies of value.
  static Shape filled(int n, int64_t value);

  int ndim() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t operator[](int i) const { return d_[check(i)]; }
  int64_t& operator[](int i) { return d_[check(i)]; }
  // Negative i counts from the end: back(-1) is the last extent.
  int64_t back(int i = -1) const { return d_[check(n_ + i)]; }

  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  int64_t* begin() { return d_.data(); }
  int64_t* end() { return d_.data() + n_; }
  const int64_t* data() const { return d_.data(); }

  void push_back(int64_t v);
  void insert(int pos, int64_t v);
  void erase(int pos);
  std::vector<int64_t> vec() const { return {begin(), end()}; }

  // Product of the extents (1 for a 0-d shape).
  int64_t numel() const;

  bool operator==(const Shape& o) const {
    return n_ == o.n_ && std::equal(begin(), end(), o.begin());
  }

 private:
  template <class It>
  void assign(It b, It e) {
    AFT_CHECK(e - b <= kMaxDims, "shape: at most {} dimensions, got {}", kMaxDims, e - b);
    n_ = 0;
    for (; b != e; ++b) d_[n_++] = static_cast<int64_t>(*b);
  }
  int check(int i) const {
    AFT_ASSERT(i >= 0 && i < n_);
    return i;
  }
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

// Strides are counted in elements, like extents they fit in a Shape.
using Strides = Shape;

// Row-major strides of a dense tensor of this shape.
Strides contiguous_strides(const Shape& shape);

// NumPy broadcasting: shapes are aligned at their last dimension; an extent 1 stretches.
// Throws "<op>: shapes cannot be broadcast: [2, 3] and [4]".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Wraps dim into [0, ndim) (dim = -1 is the last); throws "<op>: dim 3 out of range for 2-d".
int wrap_dim(int64_t dim, int ndim, const char* op);

}  // namespace aft
