// tests/test_reduce.cpp: sum, mean, amax, max, logsumexp, var (ops/reduce.cpp) against plain
// loops written here, over every dim subset of a 3-d tensor, keepdim both ways, in float64 and
// float32, on contiguous and non-contiguous inputs; dims handling (negative, repeated, out of
// range), 0-d and empty inputs, ties and NaN, numerics (-inf rows, huge values, float32 sums
// of 10^6 elements), determinism across thread counts, and gradients.
#include <fmt/ranges.h>

#include <numeric>

#include "helpers.h"
#include "reference.h"

using namespace aft;
using namespace aft::test;
using In = std::vector<Tensor>;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor uniform(const Shape& s, DType dt, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return add(mul(rand(s, kFloat64, &g), hi - lo), lo).to(dt);
}

// The elements of x that reduce into each output, grouped by hand. `red` marks the reduced
// dims; within a group elements are in x's row-major order and `along` holds each one's index
// along the single reduced dim `arg_dim` (for max), when given.
struct Groups {
  Shape out;  // the output shape (keepdim or not)
  std::vector<std::vector<double>> vals;
  std::vector<std::vector<int64_t>> along;
};
Groups group(const Tensor& x, const std::vector<bool>& red, bool keepdim, int arg_dim = -1) {
  Groups g;
  Shape keep;
  for (int d = 0; d < x.ndim(); ++d) {
    keep.push_back(red[d] ? 1 : x.shape()[d]);
    if (!red[d] || keepdim) g.out.push_back(red[d] ? 1 : x.shape()[d]);
  }
  g.vals.resize(static_cast<size_t>(keep.numel()));
  g.along.resize(g.vals.size());
  std::vector<double> v = values(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    std::vector<int64_t> idx = unravel(i, x.shape());
    int64_t o = 0;
    for (int d = 0; d < x.ndim(); ++d) o = o * keep[d] + (red[d] ? 0 : idx[d]);
    g.vals[o].push_back(v[i]);
    g.along[o].push_back(arg_dim >= 0 ? idx[arg_dim] : 0);
  }
  return g;
}

double ref_sum(const std::vector<double>& v) {
  long double s = 0;
  for (double e : v) s += e;
  return static_cast<double>(s);
}
double ref_mean(const std::vector<double>& v) { return ref_sum(v) / static_cast<double>(v.size()); }
double ref_amax(const std::vector<double>& v) {
  double m = -kInf;
  for (double e : v) {
    if (std::isnan(e)) return e;
    m = std::max(m, e);
  }
  return m;
}
double ref_lse(const std::vector<double>& v) {
  double m = ref_amax(v);
  if (std::isnan(m)) return m;
  if (std::isinf(m)) return m;  // all -inf: -inf; any +inf: +inf
  long double s = 0;
  for (double e : v) s += std::exp(static_cast<long double>(e - m));
  return m + static_cast<double>(std::log(s));
}
double ref_var(const std::vector<double>& v, int64_t correction) {
  double mu = ref_mean(v);
  long double s = 0;
  for (double e : v) s += (e - mu) * static_cast<long double>(e - mu);
  return static_cast<double>(s) / static_cast<double>(std::max<int64_t>(static_cast<int64_t>(v.size()) - correction, 0));
}

// Every dims list over a 3-d tensor, written in several ways: {} is all dims.
struct Dims {
  std::vector<int64_t> dims;
  std::vector<bool> red;
};
std::vector<Dims> all_dims() {
  return {
      {{}, {true, true, true}},       {{0}, {true, false, false}},  {{1}, {false, true, false}},
      {{-1}, {false, false, true}},   {{0, 1}, {true, true, false}}, {{2, 0}, {true, false, true}},
      {{-2, -1}, {false, true, true}}, {{0, -2, 2}, {true, true, true}}, {{-3}, {true, false, false}},
  };
}

// The 3-d test input [3, 4, 5] in several layouts.
std::vector<std::pair<std::string, Tensor>> inputs3(DType dt, uint64_t seed) {
  return {
      {"contiguous", uniform({3, 4, 5}, dt, seed, -2, 2)},
      {"permuted", uniform({5, 3, 4}, dt, seed + 1, -2, 2).permute({1, 2, 0})},
      {"sliced with step", uniform({3, 9, 5}, dt, seed + 2, -2, 2).slice(1, 1, 9, 2)},
      {"expanded", uniform({3, 1, 5}, dt, seed + 3, -2, 2).expand({3, 4, 5})},
      {"transposed slice", uniform({6, 5, 4}, dt, seed + 4, -2, 2).narrow(0, 2, 3).transpose(1, 2)},
  };
}

}  // namespace

TEST_CASE("sum, mean, amax, logsumexp, var over every dim subset, keepdim both ways") {
  for (DType dt : {kFloat64, kFloat32}) {
    const bool f64 = dt == kFloat64;
    for (const auto& [lname, x] : inputs3(dt, 10)) {
      REQUIRE(x.shape() == Shape{3, 4, 5});
      for (const Dims& d : all_dims()) {
        for (bool keepdim : {false, true}) {
          std::string what = fmt::format("{} {} dims {} keepdim {}", dtype_name(dt), lname,
                                         fmt::join(d.dims, ","), keepdim);
          CAPTURE(what);
          Groups g = group(x, d.red, keepdim);
          std::vector<double> s, m, mx, lse, v0, v1;
          for (const auto& vals : g.vals) {
            s.push_back(ref_sum(vals));
            m.push_back(ref_mean(vals));
            mx.push_back(ref_amax(vals));
            lse.push_back(ref_lse(vals));
            v0.push_back(ref_var(vals, 0));
            v1.push_back(ref_var(vals, 1));
          }
          // float32: sums accumulate in double, so one rounding at the end (plus the rounding
          // of elementwise steps for mean/var/logsumexp).
          check_ref(sum(x, d.dims, keepdim), g.out, s, f64 ? 1e-13 : 1e-6, f64 ? 1e-13 : 1e-6, "sum " + what);
          check_ref(mean(x, d.dims, keepdim), g.out, m, f64 ? 1e-13 : 1e-6, f64 ? 1e-13 : 1e-6, "mean " + what);
          check_ref(amax(x, d.dims, keepdim), g.out, mx, 0, 0, "amax " + what);
          check_ref(logsumexp(x, d.dims, keepdim), g.out, lse, f64 ? 1e-13 : 1e-6, f64 ? 1e-13 : 1e-6, "logsumexp " + what);
          check_ref(var(x, d.dims, keepdim, 0), g.out, v0, f64 ? 1e-12 : 1e-5, f64 ? 1e-13 : 1e-6, "var c=0 " + what);
          check_ref(var(x, d.dims, keepdim), g.out, v1, f64 ? 1e-12 : 1e-5, f64 ? 1e-13 : 1e-6, "var c=1 " + what);
          CHECK(sum(x, d.dims, keepdim).dtype() == dt);
        }
      }
    }
  }
}

TEST_CASE("max: values and first index along each dim, ties and NaN") {
  for (DType dt : {kFloat64, kFloat32}) {
    // Small integers: many ties.
    Generator gen(20);
    Tensor base = randint(-2, 3, {3, 4, 5}, kInt64, &gen).to(dt);
    for (const auto& [lname, x] :
         std::vector<std::pair<std::string, Tensor>>{{"contiguous", base}, {"permuted", base.permute({2, 0, 1})},
                                                     {"stepped", randint(-2, 3, {3, 8, 5}, kInt64, &gen).to(dt).slice(1, 0, 8, 2)}}) {
      for (int64_t dim : {0, 1, 2, -1, -3}) {
        for (bool keepdim : {false, true}) {
          CAPTURE(lname);
          CAPTURE(dim);
          CAPTURE(keepdim);
          int d = dim < 0 ? static_cast<int>(dim + 3) : static_cast<int>(dim);
          std::vector<bool> red(3, false);
          red[d] = true;
          Groups g = group(x, red, keepdim, d);
          std::vector<double> want_v, want_i;
          for (size_t o = 0; o < g.vals.size(); ++o) {
            size_t best = 0;
            for (size_t k = 1; k < g.vals[o].size(); ++k)
              if (g.vals[o][k] > g.vals[o][best]) best = k;  // strict: the first maximum stays
            want_v.push_back(g.vals[o][best]);
            want_i.push_back(static_cast<double>(g.along[o][best]));
          }
          MaxResult r = max(x, dim, keepdim);
          CHECK(r.indices.dtype() == kInt64);
          check_ref(r.values, g.out, want_v, 0, 0, "max values");
          check_ref(r.indices, g.out, want_i, 0, 0, "max indices");
        }
      }
    }
    // NaN wins (the first NaN), as in PyTorch; amax gives NaN too.
    Tensor n = from_vector<double>({1, kNaN, 3, kNaN, 5, 2, 5, 1}, {2, 4}).to(dt);
    MaxResult r = max(n, 1);
    check_ref(r.values, {2}, {kNaN, 5}, 0, 0, "max NaN");
    check_ref(r.indices, {2}, {1, 0}, 0, 0, "max NaN index");
    check_ref(amax(n, {1}), {2}, {kNaN, 5}, 0, 0, "amax NaN");
    check_ref(amax(n), {}, {kNaN}, 0, 0, "amax NaN all");
    // -inf everywhere: the maximum is -inf at index 0.
    MaxResult ninf = max(full({2, 3}, -kInf, dt), -1);
    check_ref(ninf.values, {2}, {-kInf, -kInf}, 0, 0, "max -inf");
    check_ref(ninf.indices, {2}, {0, 0}, 0, 0, "max -inf index");
  }
}

TEST_CASE("reductions: dims lists, 0-d and empty inputs") {
  Tensor x = uniform({2, 3, 4}, kFloat64, 30, -1, 1);
  // Negative dims are the same dims; order does not matter.
  check_ref(sum(x, {-1, 0}), {3}, values(sum(x, {0, 2})), 0, 0, "negative dims");
  check_ref(sum(x, {2, 0}, true), {1, 3, 1}, values(sum(x, {0, 2})), 0, 0, "unordered dims");
  // The same dim twice, or out of range: errors naming the op and the shape.
  check_error([&] { sum(x, {1, 1}); }, "sum: dim 1 given twice in the dims of a tensor of shape [2, 3, 4]");
  check_error([&] { mean(x, {1, -2}); }, "mean: dim 1 given twice");
  check_error([&] { amax(x, {0, 0}); }, "given twice");
  check_error([&] { logsumexp(x, {2, -1}); }, "given twice");
  check_error([&] { var(x, {3}); }, "var: dim 3 out of range for a 3-d tensor");
  check_error([&] { sum(x, {-4}); }, "out of range");
  check_error([&] { max(x, 3); }, "max: dim 3 out of range");
  check_error([] { sum(zeros({2}, kInt64)); }, "sum: expected a float32 or float64 tensor, got int64");
  check_error([] { amax(Tensor()); }, "undefined");

  // 0-d input: a reduction over "all" (or dim 0 / -1) is the value itself.
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor s = scalar_tensor(2.5, dt);
    for (bool keepdim : {false, true}) {
      for (const std::vector<int64_t>& dims : {std::vector<int64_t>{}, {0}, {-1}}) {
        check_ref(sum(s, dims, keepdim), {}, {2.5}, 0, 0, "sum 0-d");
        check_ref(mean(s, dims, keepdim), {}, {2.5}, 0, 0, "mean 0-d");
        check_ref(amax(s, dims, keepdim), {}, {2.5}, 0, 0, "amax 0-d");
        check_ref(logsumexp(s, dims, keepdim), {}, {2.5}, 1e-7, 0, "logsumexp 0-d");
        check_ref(var(s, dims, keepdim, 0), {}, {0}, 0, 0, "var 0-d correction 0");
        check_ref(var(s, dims, keepdim), {}, {kNaN}, 0, 0, "var 0-d correction 1 (0/0)");
      }
      MaxResult r = max(s, 0, keepdim);
      check_ref(r.values, {}, {2.5}, 0, 0, "max 0-d");
      check_ref(r.indices, {}, {0}, 0, 0, "max 0-d index");
    }
    check_error([&] { sum(s, {1}); }, "out of range");
    check_error([&] { sum(s, {0, 0}); }, "given twice");
  }

  // Empty inputs: a sum over nothing is 0, a mean NaN, a logsumexp -inf; amax/max of nothing
  // is an error; reducing a non-empty dim of an empty tensor gives an empty result.
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor e = zeros({2, 0, 3}, dt);
    check_ref(sum(e, {1}), {2, 3}, std::vector<double>(6, 0.0), 0, 0, "sum over empty dim");
    check_ref(sum(e, {1}, true), {2, 1, 3}, std::vector<double>(6, 0.0), 0, 0, "sum over empty dim keepdim");
    check_ref(sum(e), {}, {0}, 0, 0, "sum of empty");
    check_ref(sum(e, {0}), {0, 3}, {}, 0, 0, "sum of empty over a non-empty dim");
    check_ref(mean(e, {1}), {2, 3}, std::vector<double>(6, kNaN), 0, 0, "mean over empty dim");
    check_ref(logsumexp(e, {1}), {2, 3}, std::vector<double>(6, -kInf), 0, 0, "logsumexp over empty dim");
    check_ref(logsumexp(e), {}, {-kInf}, 0, 0, "logsumexp of empty");
    check_ref(amax(e, {0}), {0, 3}, {}, 0, 0, "amax of empty over a non-empty dim");
    check_ref(var(e, {1}), {2, 3}, std::vector<double>(6, kNaN), 0, 0, "var over empty dim");
    check_error([&] { amax(e, {1}); }, "amax: cannot take the maximum over an empty dimension of shape [2, 0, 3]");
    check_error([&] { amax(e); }, "empty");
    check_error([&] { max(e, 1); }, "max: cannot take the maximum over an empty dimension");
    MaxResult r = max(e, 2);
    CHECK(r.values.shape() == Shape{2, 0});
    CHECK(r.indices.shape() == Shape{2, 0});
  }
  // The gradient of a sum of an empty tensor is an empty tensor.
  Tensor e = zeros({2, 0, 3}, kFloat64).requires_grad_();
  sum(e).backward();
  REQUIRE(e.grad().defined());
  CHECK(e.grad().shape() == Shape{2, 0, 3});
}

TEST_CASE("logsumexp: -inf rows, +inf, NaN and huge values without overflow") {
  for (DType dt : {kFloat64, kFloat32}) {
    CAPTURE(dtype_name(dt));
    const double big = dt == kFloat64 ? 1e308 : 3e38;
    Tensor x = from_vector<double>({-kInf, -kInf, -kInf,   // all -inf: -inf
                                    1000, 1000, -kInf,    // 1000 + log 2
                                    big, big, 0,          // big + log 2 = big, not inf
                                    -1000, -1000, -1000,  // -1000 + log 3 (no underflow to -inf)
                                    kInf, 0, 1,           // +inf
                                    kNaN, 0, 1},          // NaN
                                   {6, 3}).to(dt);
    double fbig = dt == kFloat64 ? big : static_cast<double>(static_cast<float>(big));
    std::vector<double> want = {-kInf, 1000 + std::log(2.0), fbig + std::log(2.0), -1000 + std::log(3.0), kInf, kNaN};
    check_ref(logsumexp(x, {1}), {6}, want, 1e-7, 0, "logsumexp rows");
    check_ref(logsumexp(x.t(), {0}, true), {1, 6}, want, 1e-7, 0, "logsumexp columns of the transpose");
  }
  // Gradient = softmax, also for huge values; -inf elements get 0 and no NaN appears.
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor x = from_vector<double>({1000, 1001, 999, -kInf, -5000, -5001, -kInf, -kInf}, {2, 4}).to(dt).requires_grad_();
    sum(logsumexp(x, {1})).backward();
    double e0 = std::exp(-1.0), e2 = std::exp(-2.0), z = e0 + 1 + e2;
    double f1 = std::exp(-1.0), zz = 1 + f1;
    check_ref(x.grad(), {2, 4}, {e0 / z, 1 / z, e2 / z, 0, 1 / zz, f1 / zz, 0, 0}, 1e-6, 1e-12, "logsumexp gradient");
  }
}

TEST_CASE("var: correction 0, 1, 2 and correction >= n") {
  Tensor x = from_vector<double>({1, 2, 3, 4, 2, 2, 2, 2}, {2, 4});
  check_ref(var(x, {1}, false, 0), {2}, {1.25, 0}, 1e-15, 0, "var c=0");
  check_ref(var(x, {1}), {2}, {5.0 / 3, 0}, 1e-15, 0, "var c=1");
  check_ref(var(x, {1}, true, 2), {2, 1}, {2.5, 0}, 1e-15, 0, "var c=2");
  check_ref(var(x, {1}, false, 4), {2}, {kInf, kNaN}, 0, 0, "var c=n: x/0");
  check_ref(var(x), {}, {ref_var({1, 2, 3, 4, 2, 2, 2, 2}, 1)}, 1e-15, 0, "var all");
}

TEST_CASE("float32 sums of 10^6 elements are accumulated in double") {
  // 0.1f added 10^6 times: a float accumulator drifts by ~1%, a double one is exact to rounding.
  const int64_t n = 1000000;
  Tensor x = full({n}, 0.1, kFloat32);
  double exact = static_cast<double>(n) * static_cast<double>(0.1f);
  check_ref(sum(x), {}, {static_cast<double>(static_cast<float>(exact))}, 0, 0, "sum of 0.1f");
  check_ref(mean(x), {}, {static_cast<double>(static_cast<float>(static_cast<float>(exact) / 1e6f))}, 1e-7, 0, "mean of 0.1f");
  // Random values, whole tensor and along each dim of [1000, 1000] (rows and strided columns).
  Tensor r = uniform({1000, 1000}, kFloat32, 40, 0, 1);
  std::vector<double> v = values(r);
  check_ref(sum(r), {}, {static_cast<double>(static_cast<float>(ref_sum(v)))}, 1e-7, 0, "sum random");
  std::vector<double> rows(1000, 0.0), cols(1000, 0.0);
  for (int i = 0; i < 1000; ++i)
    for (int j = 0; j < 1000; ++j) {
      rows[i] += v[i * 1000 + j];
      cols[j] += v[i * 1000 + j];
    }
  check_ref(sum(r, {1}), {1000}, rows, 1e-7, 0, "row sums");
  check_ref(sum(r, {0}), {1000}, cols, 1e-7, 0, "column sums");
  check_ref(sum(r.t(), {1}), {1000}, cols, 1e-7, 0, "row sums of the transpose");
}

TEST_CASE("reductions do not depend on the thread count") {
  int nt = num_threads();
  Tensor x = uniform({257, 301, 3}, kFloat32, 50, -1, 1).permute({2, 0, 1});
  std::vector<std::vector<double>> first;
  for (int threads : {1, 2, 3, 5}) {
    set_num_threads(threads);
    std::vector<std::vector<double>> now = {values(sum(x)), values(sum(x, {1})), values(sum(x, {0, 2})),
                                            values(amax(x, {2})), values(logsumexp(x, {1})),
                                            values(max(x, 1).indices)};
    if (first.empty()) first = now;
    CHECK(now == first);
  }
  set_num_threads(nt);
}

TEST_CASE("long rows and wide columns: blocked sums match plain loops and each other") {
  // Rows longer than one summation block, few of them (split over threads by block) and many
  // (one row per task): the grouping of additions depends on the row length only, so the
  // first rows of both come out bit for bit the same.
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = uniform({70, 40000}, dt, 70, -1, 1);
    Tensor few = sum(x.narrow(0, 0, 5), {1}), many = sum(x, {1});
    std::vector<double> v = values(x), want(70, 0.0);
    for (int i = 0; i < 70; ++i) want[i] = ref_sum(std::vector<double>(v.begin() + i * 40000, v.begin() + (i + 1) * 40000));
    check_ref(many, {70}, want, dt == kFloat64 ? 1e-12 : 1e-6, 1e-9, "70 long rows");
    std::vector<double> vf = values(few), vm = values(many);
    for (int i = 0; i < 5; ++i) CHECK(vf[i] == vm[i]);
    // Columns: outputs in several blocks of adjacent columns (1000 > 256), reduced dims strided.
    Tensor y = uniform({30, 7, 1000}, dt, 71, -1, 1);
    Groups g = group(y, {true, false, false}, false);
    std::vector<double> cw;
    for (const auto& vals : g.vals) cw.push_back(ref_sum(vals));
    check_ref(sum(y, {0}), g.out, cw, dt == kFloat64 ? 1e-13 : 1e-6, 1e-9, "columns");
    Groups g2 = group(y, {true, true, false}, true);
    std::vector<double> cw2;
    for (const auto& vals : g2.vals) cw2.push_back(ref_sum(vals));
    check_ref(sum(y, {0, 1}, true), g2.out, cw2, dt == kFloat64 ? 1e-13 : 1e-6, 1e-9, "columns over two dims");
  }
  int nt = num_threads();
  Tensor x = uniform({70, 40000}, kFloat32, 72, -1, 1);
  std::vector<std::vector<double>> first;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<std::vector<double>> now = {values(sum(x, {1})), values(sum(x.narrow(0, 0, 3), {1})),
                                            values(sum(x, {0})), values(sum(x))};
    if (first.empty()) first = now;
    CHECK(now == first);
  }
  set_num_threads(nt);
}

TEST_CASE("reduction gradients: gradcheck over dim subsets, ties, non-contiguous input") {
  Tensor x = uniform({2, 3, 4}, kFloat64, 60, -2, 2).requires_grad_();
  for (const Dims& d : all_dims()) {
    for (bool keepdim : {false, true}) {
      CAPTURE(fmt::format("dims {} keepdim {}", fmt::join(d.dims, ","), keepdim));
      std::vector<int64_t> dims = d.dims;
      check_gradcheck([&](const In& in) { return sum(in[0], dims, keepdim); }, {x});
      check_gradcheck([&](const In& in) { return mean(in[0], dims, keepdim); }, {x});
      check_gradcheck([&](const In& in) { return amax(in[0], dims, keepdim); }, {x});
      check_gradcheck([&](const In& in) { return logsumexp(in[0], dims, keepdim); }, {x});
      check_gradcheck([&](const In& in) { return var(in[0], dims, keepdim); }, {x});
      check_gradcheck([&](const In& in) { return var(in[0], dims, keepdim, 0); }, {x});
      // Non-contiguous: the permuted tensor reduced over the same dims.
      check_gradcheck([&](const In& in) { return logsumexp(in[0].permute({2, 0, 1}).transpose(1, 2), dims, keepdim); }, {x});
    }
  }
  for (int64_t dim : {0, 1, -1}) {
    for (bool keepdim : {false, true}) {
      check_gradcheck([&](const In& in) { return max(in[0], dim, keepdim).values; }, {x});
      check_gradcheck([&](const In& in) { return max(in[0].transpose(0, 2), dim, keepdim).values; }, {x});
    }
  }
  // Ties: amax shares the gradient equally, max sends it to the first maximum.
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor t = from_vector<double>({1, 3, 3, 2, 5, 5, 5, 0}, {2, 4}).to(dt).requires_grad_();
    sum(mul(amax(t, {1}), from_vector<double>({1, 6}).to(dt))).backward();
    check_ref(t.grad(), {2, 4}, {0, 0.5, 0.5, 0, 2, 2, 2, 0}, 1e-7, 0, "amax ties");
    t.zero_grad();
    sum(max(t, 1).values).backward();
    check_ref(t.grad(), {2, 4}, {0, 1, 0, 0, 1, 0, 0, 0}, 0, 0, "max ties");
    t.zero_grad();
    sum(amax(t)).backward();  // over all: the three 5s share
    check_ref(t.grad(), {2, 4}, {0, 0, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0}, 1e-7, 0, "amax all ties");
  }
  // 0-d input.
  Tensor s = scalar_tensor(0.7, kFloat64).requires_grad_();
  check_gradcheck([](const In& in) { return sum(in[0]); }, {s});
  check_gradcheck([](const In& in) { return logsumexp(in[0]); }, {s});
  check_gradcheck([](const In& in) { return amax(in[0], {0}, true); }, {s});
  check_gradcheck([](const In& in) { return max(in[0], 0).values; }, {s});
}
