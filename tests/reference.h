// tests/reference.h: plain-loop reference helpers for the op tests (test_elementwise,
// test_reduce, test_views_grad).
//
// The reference side of a test must not go through the code under test: values() reads a CPU
// tensor element by element from its storage pointer, shape, strides and offset (no
// contiguous(), no cpu_loops), and the index helpers do NumPy broadcasting by hand.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "aft.h"

namespace aft::test {

// Row-major multi-index of flat position i in shape s.
inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(static_cast<size_t>(s.ndim()));
  for (int d = s.ndim() - 1; d >= 0; --d) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

// Every element of a CPU tensor in row-major logical order, as double, read through its
// strides one element at a time.
inline std::vector<double> values(const Tensor& t) {
  REQUIRE(t.is_cpu());
  std::vector<double> out;
  const int64_t n = t.numel();
  out.reserve(static_cast<size_t>(n));
  const char* base = static_cast<const char*>(t.raw_data());
  const size_t es = t.element_size();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> idx = unravel(i, t.shape());
    int64_t off = 0;
    for (int d = 0; d < t.ndim(); ++d) off += idx[d] * t.strides()[d];
    const char* p = base + off * static_cast<int64_t>(es);
    switch (t.dtype()) {
      case kFloat32: out.push_back(*reinterpret_cast<const float*>(p)); break;
      case kFloat64: out.push_back(*reinterpret_cast<const double*>(p)); break;
      case kInt64: out.push_back(static_cast<double>(*reinterpret_cast<const int64_t*>(p))); break;
      case kBool: out.push_back(*reinterpret_cast<const bool*>(p) ? 1.0 : 0.0); break;
      default: FAIL("values(): unsupported dtype");
    }
  }
  return out;
}

// NumPy broadcast of two shapes, by hand (aligned at the last dim, extent 1 stretches).
inline Shape ref_broadcast(const Shape& a, const Shape& b) {
  int n = std::max(a.ndim(), b.ndim());
  Shape out;
  for (int i = 0; i < n; ++i) {
    int ia = a.ndim() - n + i, ib = b.ndim() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    REQUIRE((da == db || da == 1 || db == 1));
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

// Flat row-major position in an input of shape `in` of the element that broadcasts to the
// output multi-index `idx` (idx has the output's rank, `in` at most that).
inline int64_t ref_source(const std::vector<int64_t>& idx, const Shape& in) {
  int lead = static_cast<int>(idx.size()) - in.ndim();
  int64_t pos = 0;
  for (int d = 0; d < in.ndim(); ++d) pos = pos * in[d] + (in[d] == 1 ? 0 : idx[lead + d]);
  return pos;
}

// Compares a tensor with reference values: equal NaN-ness, equal infinities, and otherwise
// |got - want| <= atol + rtol * |want|.
inline void check_ref(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                      double rtol, double atol, const std::string& what = "") {
  REQUIRE_MESSAGE(got.shape() == shape, what, ": shape ", to_string(got.shape()), " vs ", to_string(shape));
  std::vector<double> v = values(got);
  REQUIRE(v.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    double g = v[i], w = want[i];
    bool ok = std::isnan(w) ? std::isnan(g)
            : std::isinf(w) ? g == w
            : std::fabs(g - w) <= atol + rtol * std::fabs(w);
    if (!ok && bad++ < 5) CHECK_MESSAGE(ok, what, ": element ", i, " is ", g, ", expected ", w);
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", v.size(), " elements differ");
}

}  // namespace aft::test
