// tests/test_nn_ops.cpp: softmax, log_softmax, layer_norm, cross_entropy, dropout and
// sigmoid_gate: forward against plain float64 loops, gradcheck of every input, numerical
// stability, edge cases (size-1 dims, empty, ignored rows, non-contiguous), errors, dropout's
// mask (statistics, determinism, the exact Philox formula, same mask for both dtypes), and
// thread-count independence of the reductions.
#include <cmath>
#include <limits>

#include "core/philox.h"
#include "helpers.h"

using namespace aft;
using namespace aft::test;

namespace {

using In = std::vector<Tensor>;
const double kInf = std::numeric_limits<double>::infinity();

// Reference softmax / log_softmax along dim d of a contiguous tensor, from the definition.
std::vector<double> ref_softmax(const Tensor& x, int d, bool log) {
  std::vector<double> v = x.contiguous().to_vector(), out(v.size());
  const Shape& s = x.shape();
  int64_t O = 1, N = s[d], I = 1;
  for (int k = 0; k < d; ++k) O *= s[k];
  for (int k = d + 1; k < s.ndim(); ++k) I *= s[k];
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      auto at = [&](int64_t k) { return static_cast<size_t>((o * N + k) * I + i); };
      double m = -kInf, z = 0;
      for (int64_t k = 0; k < N; ++k) m = std::max(m, v[at(k)]);
      for (int64_t k = 0; k < N; ++k) z += std::exp(v[at(k)] - m);
      for (int64_t k = 0; k < N; ++k)
        out[at(k)] = log ? v[at(k)] - m - std::log(z) : std::exp(v[at(k)] - m) / z;
    }
  return out;
}

Tensor grad_with_threads(int threads, const std::function<Tensor(const In&)>& f, const In& x0, size_t which) {
  int prev = num_threads();
  set_num_threads(threads);
  In x;
  for (const Tensor& t : x0) x.push_back(t.detach().clone().requires_grad_());
  Tensor y = f(x);
  Generator g(5);
  sum(mul(y, randn(y.shape(), y.dtype(), &g))).backward();
  set_num_threads(prev);
  return x[which].grad();
}

void check_bitwise_equal(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  size_t diff = 0;
  for (size_t i = 0; i < va.size(); ++i) diff += va[i] != vb[i];
  CHECK_MESSAGE(diff == 0, diff, " elements differ");
}

}  // namespace

// ------------------------------------------------------------------ softmax

TEST_CASE("softmax, log_softmax: forward against a loop on every dim") {
  Generator g(1);
  Tensor x = mul(randn({3, 4, 5}, kFloat64, &g), 3.0);
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    int d = dim < 0 ? static_cast<int>(dim) + 3 : static_cast<int>(dim);
    check_values(softmax(x, dim), ref_softmax(x, d, false), 1e-14);
    check_values(log_softmax(x, dim), ref_softmax(x, d, true), 1e-13);
    check_close(softmax(x.to(kFloat32), dim), softmax(x, dim), 1e-5, 1e-7);
    check_close(log_softmax(x.to(kFloat32), dim), log_softmax(x, dim), 1e-5, 1e-5);
  }
  // Non-contiguous input; a long row (many tiles) and wide inner extent.
  Tensor xt = x.permute({2, 0, 1});
  check_values(softmax(xt, 1), ref_softmax(xt.contiguous(), 1, false), 1e-14);
  Tensor big = randn({3, 1000, 70}, kFloat64, &g);
  check_values(log_softmax(big, 1), ref_softmax(big, 1, true), 1e-12);
  check_values(log_softmax(big, -1), ref_softmax(big, 2, true), 1e-12);
}

TEST_CASE("softmax, log_softmax: stability and edge cases") {
  // Huge logits: max-shifted, no overflow.
  Tensor x = from_vector<double>({1000, 1001, 1002, -1000});
  check_values(softmax(x, 0), ref_softmax(from_vector<double>({0, 1, 2, -2000}), 0, false), 1e-15);
  check_values(log_softmax(x.to(kFloat32), 0), ref_softmax(from_vector<double>({0, 1, 2, -2000}), 0, true), 1e-4);
  // Masked (-inf) entries get probability 0; a fully masked row is NaN, as PyTorch.
  Tensor m = from_vector<double>({0, -kInf, 1, -kInf, -kInf, -kInf}, {2, 3});
  std::vector<double> sm = softmax(m, 1).to_vector();
  CHECK(sm[1] == 0);
  CHECK(sm[0] == doctest::Approx(1 / (1 + std::exp(1.0))));
  for (int i = 3; i < 6; ++i) CHECK(std::isnan(sm[i]));
  CHECK(log_softmax(m, 1).to_vector()[1] == -kInf);
  // Size-1 dim: softmax 1, log_softmax 0. 0-d. Empty.
  check_values(softmax(from_vector<double>({3, -2}, {2, 1}), 1), {1, 1});
  check_values(log_softmax(from_vector<double>({3, -2}, {2, 1}), -1), {0, 0});
  check_values(softmax(scalar_tensor(5.0, kFloat64), 0), {1});
  CHECK(softmax(zeros({0, 3}), 1).shape() == Shape({0, 3}));
  CHECK(softmax(zeros({3, 0}), 1).shape() == Shape({3, 0}));
  Tensor e = leaf({2, 0}, 1);
  sum(log_softmax(e, 1)).backward();
  CHECK(e.grad().shape() == Shape({2, 0}));
}

TEST_CASE("softmax, log_softmax: gradients") {
  for (int64_t dim : {0, 1, 2, -1}) {
    check_gradcheck([dim](const In& x) { return softmax(x[0], dim); }, {leaf({2, 3, 4}, 2)});
    check_gradcheck([dim](const In& x) { return log_softmax(x[0], dim); }, {leaf({2, 3, 4}, 3)});
  }
  check_gradcheck([](const In& x) { return softmax(x[0].t(), 1); }, {leaf({4, 3}, 4, 2.0)});
  check_gradcheck([](const In& x) { return log_softmax(x[0], 1); }, {leaf({3, 1}, 5)});
  // The gradient flows through an expanded upstream gradient (from sum).
  Tensor x = leaf({2, 3}, 6);
  sum(softmax(x, 1)).backward();
  check_values(x.grad(), {0, 0, 0, 0, 0, 0}, 1e-15);
}

TEST_CASE("softmax: errors") {
  check_error([] { softmax(zeros({2, 3}), 2); }, "softmax: dim 2 out of range for a 2-d tensor");
  check_error([] { log_softmax(zeros({2}, kInt64), 0); }, "log_softmax: expected a float32 or float64 tensor, got int64");
  check_error([] { softmax(Tensor(), 0); }, "softmax: input is an undefined tensor");
}

// ------------------------------------------------------------------ layer_norm

namespace {
// Reference layer norm of a contiguous [R, D] view of x; w/b may be undefined.
std::vector<double> ref_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  std::vector<double> v = x.contiguous().to_vector(), out(v.size());
  int64_t D = x.shape().back(), R = x.numel() / D;
  std::vector<double> vw = w.defined() ? w.to_vector() : std::vector<double>(D, 1.0);
  std::vector<double> vb = b.defined() ? b.to_vector() : std::vector<double>(D, 0.0);
  for (int64_t r = 0; r < R; ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mean += v[r * D + j];
    mean /= D;
    for (int64_t j = 0; j < D; ++j) var += (v[r * D + j] - mean) * (v[r * D + j] - mean);
    var /= D;
    for (int64_t j = 0; j < D; ++j)
      out[r * D + j] = (v[r * D + j] - mean) / std::sqrt(var + eps) * vw[j] + vb[j];
  }
  return out;
}
}  // namespace

TEST_CASE("layer_norm: forward against a loop") {
  Generator g(2);
  Tensor x = add(mul(randn({2, 3, 8}, kFloat64, &g), 4.0), 100.0);  // large mean: two-pass variance
  Tensor w = randn({8}, kFloat64, &g), b = randn({8}, kFloat64, &g);
  check_values(layer_norm(x, w, b, 1e-5), ref_layer_norm(x, w, b, 1e-5), 1e-12);
  check_values(layer_norm(x, Tensor(), Tensor(), 1e-3), ref_layer_norm(x, Tensor(), Tensor(), 1e-3), 1e-12);
  check_values(layer_norm(x, w, Tensor()), ref_layer_norm(x, w, Tensor(), 1e-5), 1e-12);
  check_values(layer_norm(x, Tensor(), b), ref_layer_norm(x, Tensor(), b, 1e-5), 1e-12);
  check_close(layer_norm(x.to(kFloat32), w.to(kFloat32), b.to(kFloat32)), layer_norm(x, w, b), 1e-4, 1e-4);
  // Non-contiguous x: the last dim of x.t() is strided.
  Tensor xt = randn({8, 5}, kFloat64, &g).t();
  check_values(layer_norm(xt, w.narrow(0, 0, 8).narrow(0, 0, 8), b), ref_layer_norm(xt, w, b, 1e-5), 1e-12);
  // D = 1: x - mean = 0, so the output is the bias. 1-d x. Empty rows.
  check_values(layer_norm(from_vector<double>({3, -7}, {2, 1}), Tensor(), from_vector<double>({0.5})), {0.5, 0.5});
  Tensor x1 = from_vector<double>({1, 2, 3, 4});
  check_values(layer_norm(x1, Tensor(), Tensor(), 0.0), ref_layer_norm(x1, Tensor(), Tensor(), 0.0), 1e-14);
  CHECK(layer_norm(zeros({0, 4}), Tensor(), Tensor()).shape() == Shape({0, 4}));
}

TEST_CASE("layer_norm: gradients of x, weight and bias") {
  check_gradcheck([](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); },
                  {leaf({2, 3, 5}, 1), leaf({5}, 2), leaf({5}, 3)});
  check_gradcheck([](const In& x) { return layer_norm(x[0], Tensor(), Tensor(), 1e-5); }, {leaf({4, 6}, 4)});
  check_gradcheck([](const In& x) { return layer_norm(x[0], x[1], Tensor(), 1e-5); }, {leaf({3, 4}, 5), leaf({4}, 6)});
  check_gradcheck([](const In& x) { return layer_norm(x[0].t(), Tensor(), x[1], 1e-5); }, {leaf({4, 3}, 7), leaf({4}, 8)});
  check_gradcheck([](const In& x) { return layer_norm(x[0], x[1], x[2], 0.1); }, {leaf({2, 1}, 9), leaf({1}, 10), leaf({1}, 11)});
  // Only some inputs require grad.
  Tensor x = zeros({3, 4}, kFloat64), w = ones({4}, kFloat64), b = leaf({4}, 12);
  sum(layer_norm(x, w, b)).backward();
  check_values(b.grad(), {3, 3, 3, 3});
  Tensor w2 = leaf({4}, 13);
  Tensor x2 = from_vector<double>({1, 2, 3, 4}, {1, 4});
  sum(layer_norm(x2, w2, Tensor(), 0.0)).backward();
  check_values(w2.grad(), ref_layer_norm(x2, Tensor(), Tensor(), 0.0), 1e-12);  // dw = xhat
  // dweight and dbias are summed over rows in an order that does not depend on threads.
  Generator g(3);
  In in = {randn({300, 96}, kFloat64, &g), randn({96}, kFloat64, &g), randn({96}, kFloat64, &g)};
  auto f = [](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); };
  for (size_t which : {0, 1, 2}) {
    Tensor ref = grad_with_threads(1, f, in, which);
    for (int th : {2, 3, 8}) check_bitwise_equal(grad_with_threads(th, f, in, which), ref);
  }
}

TEST_CASE("layer_norm: errors") {
  Tensor x = zeros({2, 4});
  check_error([&] { layer_norm(x, zeros({3}), Tensor()); }, "layer_norm: weight must have shape [4] (the last dim of x [2, 4]), got [3]");
  check_error([&] { layer_norm(x, Tensor(), zeros({1, 4})); }, "layer_norm: bias must have shape [4]");
  check_error([&] { layer_norm(x, zeros({4}, kFloat64), Tensor()); }, "layer_norm: weight is float64 on cpu but x is float32");
  check_error([] { layer_norm(scalar_tensor(1.0), Tensor(), Tensor()); }, "layer_norm: x must have at least one dim");
  check_error([&] { layer_norm(x, Tensor(), Tensor(), -1.0); }, "layer_norm: eps must be finite and non-negative");
  check_error([] { layer_norm(zeros({2}, kInt64), Tensor(), Tensor()); }, "layer_norm: expected a float32 or float64");
}

// ------------------------------------------------------------------ cross_entropy

namespace {
// Reference loss per row and the reduction, from log-softmax by the definition.
double ref_cross_entropy(const Tensor& logits, const std::vector<int64_t>& t, int64_t ignore, double e,
                         Reduction red, std::vector<double>* rows = nullptr) {
  int64_t N = logits.shape()[0], C = logits.shape()[1];
  std::vector<double> ls = ref_softmax(logits, 1, true);
  double total = 0;
  int64_t count = 0;
  if (rows) rows->assign(N, 0.0);
  for (int64_t r = 0; r < N; ++r) {
    if (t[r] == ignore) continue;
    double l = 0;
    for (int64_t c = 0; c < C; ++c) l -= ((c == t[r] ? 1 - e : 0) + e / C) * ls[r * C + c];
    if (rows) (*rows)[r] = l;
    total += l;
    ++count;
  }
  return red == Reduction::Mean ? total / count : total;
}
}  // namespace

TEST_CASE("cross_entropy: forward against a loop") {
  Generator g(4);
  Tensor x = mul(randn({6, 5}, kFloat64, &g), 2.0);
  std::vector<int64_t> tv = {4, 0, -100, 2, 2, 1};
  Tensor t = from_vector<int64_t>(tv);
  for (double e : {0.0, 0.1, 1.0}) {
    CAPTURE(e);
    check_values(cross_entropy(x, t, -100, e), {ref_cross_entropy(x, tv, -100, e, Reduction::Mean)}, 1e-13);
    check_values(cross_entropy(x, t, -100, e, Reduction::Sum), {ref_cross_entropy(x, tv, -100, e, Reduction::Sum)}, 1e-13);
    std::vector<double> rows;
    ref_cross_entropy(x, tv, -100, e, Reduction::None, &rows);
    Tensor none = cross_entropy(x, t, -100, e, Reduction::None);
    CHECK(none.shape() == Shape({6}));
    check_values(none, rows, 1e-13);
    CHECK(none.to_vector()[2] == 0);  // the ignored row
    check_close(cross_entropy(x.to(kFloat32), t, -100, e), cross_entropy(x, t, -100, e), 1e-5, 1e-6);
  }
  // ignore_index can be any value, also a valid class; non-contiguous logits and target.
  std::vector<int64_t> tv2 = {4, 0, 2, 2, 3, 1};
  check_values(cross_entropy(x, from_vector<int64_t>(tv2), 2, 0.0), {ref_cross_entropy(x, tv2, 2, 0.0, Reduction::Mean)}, 1e-13);
  Tensor xt = x.t().contiguous().t();
  Tensor t2 = from_vector<int64_t>({4, 9, 0, 9, -100, 9, 2, 9, 2, 9, 1, 9}).slice(0, 0, 12, 2);
  check_values(cross_entropy(xt, t2), {ref_cross_entropy(x, tv, -100, 0.0, Reduction::Mean)}, 1e-13);
  // Agrees with log_softmax + gather composed.
  Tensor t3 = from_vector<int64_t>({4, 0, 3, 2, 2, 1});
  Tensor nll = neg(mean(gather(log_softmax(x, 1), 1, t3.reshape({6, 1}))));
  check_close(cross_entropy(x, t3), nll, 1e-13, 1e-13);
  // Huge logits stay finite.
  Tensor big = from_vector<double>({1000, -1000, 999, 1e4, 0, 1e4 - 1}, {2, 3});
  check_values(cross_entropy(big, from_vector<int64_t>({2, 2}), -100, 0.0, Reduction::None),
               {1 + std::log1p(std::exp(-1.0) + std::exp(-2000.0)), 1 + std::log1p(std::exp(-1.0))}, 1e-12);
  CHECK(std::isfinite(cross_entropy(big.to(kFloat32), from_vector<int64_t>({1, 1})).item()));
}

TEST_CASE("cross_entropy: all ignored, empty, C = 1") {
  Tensor x = leaf({3, 4}, 1);
  Tensor t = from_vector<int64_t>({-100, -100, -100});
  Tensor l = cross_entropy(x, t);
  CHECK(std::isnan(l.item()));  // 0 / 0, as PyTorch
  l.backward();
  check_values(x.grad(), std::vector<double>(12, 0.0));
  check_values(cross_entropy(x, t, -100, 0.0, Reduction::Sum), {0});
  CHECK(std::isnan(cross_entropy(zeros({0, 4}), zeros({0}, kInt64)).item()));
  CHECK(cross_entropy(zeros({0, 4}), zeros({0}, kInt64), -100, 0.0, Reduction::None).shape() == Shape({0}));
  check_values(cross_entropy(leaf({2, 1}, 2), zeros({2}, kInt64)), {0});  // one class: certain
}

TEST_CASE("cross_entropy: gradients") {
  Tensor t = from_vector<int64_t>({1, -100, 3, 0, 3});
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (double e : {0.0, 0.3}) {
      CAPTURE(e);
      check_gradcheck([&](const In& x) { return cross_entropy(x[0], t, -100, e, red); }, {leaf({5, 4}, 3, 2.0)});
    }
  check_gradcheck([&](const In& x) { return cross_entropy(x[0].t(), t, -100, 0.1); }, {leaf({4, 5}, 4)});
  // dx = (softmax - onehot) / count.
  Tensor x = leaf({2, 3}, 5);
  cross_entropy(x, from_vector<int64_t>({2, 0})).backward();
  std::vector<double> p = ref_softmax(x.detach(), 1, false);
  check_values(x.grad(), {p[0] / 2, p[1] / 2, (p[2] - 1) / 2, (p[3] - 1) / 2, p[4] / 2, p[5] / 2}, 1e-15);
}

TEST_CASE("cross_entropy: errors") {
  Tensor x = zeros({3, 5});
  check_error([&] { cross_entropy(x, from_vector<int64_t>({0, 5, 1})); }, "cross_entropy: target 5 of row 1 is out of range [0, 5) (C = 5)");
  check_error([&] { cross_entropy(x, from_vector<int64_t>({0, -1, 1})); }, "cross_entropy: target -1 of row 1 is out of range");
  check_error([&] { cross_entropy(x, zeros({3}, kFloat32)); }, "cross_entropy: target must be int64, got float32");
  check_error([&] { cross_entropy(x, zeros({2}, kInt64)); }, "cross_entropy: target must have shape [3] for logits [3, 5], got [2]");
  check_error([&] { cross_entropy(zeros({3}), zeros({3}, kInt64)); }, "cross_entropy: logits must be 2-d [N, C]");
  check_error([&] { cross_entropy(x, zeros({3}, kInt64), -100, 1.5); }, "cross_entropy: label_smoothing must be in [0, 1], got 1.5");
}

// ------------------------------------------------------------------ dropout

TEST_CASE("dropout: identity in eval mode and for p = 0; zeros for p = 1") {
  Tensor x = leaf({3, 4}, 1);
  Generator g(1);
  CHECK(dropout(x, 0.5, false, &g).is_same(x));
  CHECK(dropout(x, 0.0, true, &g).is_same(x));
  CHECK(g.state().offset == 0);  // no random numbers drawn
  Tensor z = dropout(x, 1.0, true, &g);
  check_values(z, std::vector<double>(12, 0.0));
  sum(z).backward();
  check_values(x.grad(), std::vector<double>(12, 0.0));
}

TEST_CASE("dropout: the mask is the documented Philox formula, the same for float32 and float64") {
  const double p = 0.3;
  Generator g(42);
  g.reserve(5);  // start from a non-zero counter
  Generator::State st = g.state();
  Tensor x = add(rand({7, 9}, kFloat64), 0.5);  // no zeros
  Tensor y = dropout(x, p, true, &g);
  CHECK(g.state().offset == st.offset + (63 + 3) / 4);  // one counter per 4 elements
  std::vector<double> vx = x.to_vector(), vy = y.to_vector();
  for (size_t i = 0; i < vx.size(); ++i) {
    bool keep = philox::uniform_f32_at(st.seed, st.offset, i) >= static_cast<float>(p);
    CHECK(vy[i] == doctest::Approx(keep ? vx[i] / (1 - p) : 0.0).epsilon(1e-15));
  }
  g.set_state(st);
  Tensor y32 = dropout(x.to(kFloat32), p, true, &g);
  std::vector<double> v32 = y32.to_vector();
  for (size_t i = 0; i < vx.size(); ++i) CHECK((v32[i] == 0) == (vy[i] == 0));
  check_close(y32, y, 1e-6, 1e-6);
  // Element i is the row-major position: a non-contiguous x gets the same mask as its copy.
  g.set_state(st);
  Tensor xt = x.t().contiguous().t();
  check_close(dropout(xt, p, true, &g), y, 0, 0);
}

TEST_CASE("dropout: statistics, determinism per seed, thread count") {
  const int64_t n = 200000;
  Tensor x = ones({n}, kFloat64);
  for (double p : {0.1, 0.5, 0.9}) {
    Generator g(7);
    Tensor y = dropout(x, p, true, &g);
    std::vector<double> v = y.to_vector();
    int64_t kept = 0;
    for (double e : v) {
      kept += e != 0;
      if (e != 0) CHECK(e == doctest::Approx(1 / (1 - p)));
    }
    double frac = static_cast<double>(kept) / n, sd = std::sqrt(p * (1 - p) / n);
    CHECK(std::fabs(frac - (1 - p)) < 5 * sd);
    CHECK(std::fabs(mean(y).item() - 1.0) < 5 * sd / (1 - p));  // unbiased
  }
  Generator a(11), b(11), c(12);
  Tensor ya = dropout(x, 0.5, true, &a), yb = dropout(x, 0.5, true, &b), yc = dropout(x, 0.5, true, &c);
  check_close(ya, yb, 0, 0);
  CHECK(sum(ne(ya, yc).to(kFloat64)).item() > n / 4.0);
  CHECK(sum(ne(dropout(x, 0.5, true, &a), ya).to(kFloat64)).item() > n / 4.0);  // the stream moved on
  int prev = num_threads();
  set_num_threads(1);
  Generator d(11);
  Tensor y1 = dropout(x, 0.5, true, &d);
  set_num_threads(prev);
  check_close(y1, ya, 0, 0);
}

TEST_CASE("dropout: gradient uses the same mask") {
  Tensor x = leaf({5, 6}, 2);
  Generator g(3);
  Tensor y = dropout(x, 0.4, true, &g);
  y.backward(ones({5, 6}, kFloat64));
  std::vector<double> vx = x.detach().to_vector(), vy = y.to_vector(), gx = x.grad().to_vector();
  for (size_t i = 0; i < vx.size(); ++i) CHECK(gx[i] == doctest::Approx(vy[i] / vx[i]).epsilon(1e-12));
  check_gradcheck([](const In& in) {
    Generator g(9);
    return dropout(in[0], 0.25, true, &g);
  }, {leaf({4, 5}, 4)});
  // The default generator is used without one.
  manual_seed(99);
  Tensor d1 = dropout(x.detach(), 0.5);
  manual_seed(99);
  check_close(dropout(x.detach(), 0.5), d1, 0, 0);
}

TEST_CASE("dropout: errors") {
  check_error([] { dropout(zeros({2}), -0.1); }, "dropout: p must be in [0, 1], got -0.1");
  check_error([] { dropout(zeros({2}), 1.5); }, "dropout: p must be in [0, 1]");
  check_error([] { dropout(zeros({2}), std::nan("")); }, "dropout: p must be in [0, 1]");
  check_error([] { dropout(zeros({2}, kInt64), 0.5); }, "dropout: expected a float32 or float64 tensor");
}

// ------------------------------------------------------------------ sigmoid_gate

TEST_CASE("sigmoid_gate: forward against a loop, broadcasting, stability") {
  Generator g(6);
  Tensor q = mul(randn({2, 3, 4}, kFloat64, &g), 3.0), x = randn({2, 3, 4}, kFloat64, &g);
  std::vector<double> vq = q.to_vector(), vx = x.to_vector(), want(vq.size());
  for (size_t i = 0; i < vq.size(); ++i) want[i] = vx[i] / (1 + std::exp(-vq[i]));
  check_values(sigmoid_gate(q, x), want, 1e-15);
  check_close(sigmoid_gate(q.to(kFloat32), x.to(kFloat32)), sigmoid_gate(q, x), 1e-6, 1e-7);
  check_close(sigmoid_gate(q.transpose(0, 2), x.transpose(0, 2)), sigmoid_gate(q, x).transpose(0, 2), 0, 0);
  // q [4] broadcast over x [2, 3, 4], and x [3, 1] over q [2, 3, 4].
  Tensor qb = q.select(0, 0).select(0, 0);
  check_close(sigmoid_gate(qb, x), mul(sigmoid(qb), x), 1e-15, 0);
  Tensor xb = x.narrow(2, 0, 1).select(0, 1);
  Tensor yb = sigmoid_gate(q, xb);
  CHECK(yb.shape() == Shape({2, 3, 4}));
  check_close(yb, mul(sigmoid(q), xb), 1e-15, 0);
  // Large |q|: exactly 0 and x, no NaN.
  check_values(sigmoid_gate(from_vector<double>({-1000, 1000, 0}), from_vector<double>({5, 5, 5})), {0, 5, 2.5});
  check_values(sigmoid_gate(from_vector<float>({-1000, 1000}), from_vector<float>({5, 5})), {0, 5});
  CHECK(sigmoid_gate(zeros({0, 3}), zeros({3})).shape() == Shape({0, 3}));
}

TEST_CASE("sigmoid_gate: gradients") {
  check_gradcheck([](const In& in) { return sigmoid_gate(in[0], in[1]); }, {leaf({2, 3, 4}, 1, 2.0), leaf({2, 3, 4}, 2)});
  check_gradcheck([](const In& in) { return sigmoid_gate(in[0], in[1]); }, {leaf({4}, 3), leaf({2, 3, 4}, 4)});
  check_gradcheck([](const In& in) { return sigmoid_gate(in[0], in[1]); }, {leaf({3, 1}, 5), leaf({2, 1, 4}, 6)});
  check_gradcheck([](const In& in) { return sigmoid_gate(in[0].t(), in[1]); }, {leaf({4, 3}, 7), leaf({3, 4}, 8)});
  // Only one input requires grad: dx = sigmoid(q), dq = x·s·(1 - s).
  Tensor q = from_vector<double>({0.0, 2.0}), x = leaf({2}, 9);
  sum(sigmoid_gate(q, x)).backward();
  check_values(x.grad(), {0.5, 1 / (1 + std::exp(-2.0))}, 1e-15);
  Tensor q2 = leaf({2}, 10), x2 = from_vector<double>({3.0, -1.0});
  sum(sigmoid_gate(q2, x2)).backward();
  std::vector<double> vq = q2.detach().to_vector();
  for (int i = 0; i < 2; ++i) {
    double s = 1 / (1 + std::exp(-vq[i]));
    CHECK(q2.grad().to_vector()[i] == doctest::Approx(x2.to_vector()[i] * s * (1 - s)).epsilon(1e-14));
  }
}

TEST_CASE("sigmoid_gate: errors") {
  check_error([] { sigmoid_gate(zeros({2, 3}), zeros({4})); }, "sigmoid_gate: shapes cannot be broadcast: [2, 3] and [4]");
  check_error([] { sigmoid_gate(zeros({2}), zeros({2}, kFloat64)); }, "sigmoid_gate: dtypes differ");
  check_error([] { sigmoid_gate(zeros({2}, kInt64), zeros({2}, kInt64)); }, "sigmoid_gate: expected a float32 or float64");
}
