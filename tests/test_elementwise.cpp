// tests/test_elementwise.cpp: the unary, binary, scalar, comparison and where ops (ops/unary.cpp,
// ops/binary.cpp, ops/compare.cpp) against plain loops written here, in float64 and float32:
// NumPy broadcasting of every kind, non-contiguous operands, 0-d and empty tensors, NaN and
// overflow behaviour, gradients (gradcheck and hand-derived values), and the errors.
#include "helpers.h"
#include "reference.h"

using namespace aft;
using namespace aft::test;
using In = std::vector<Tensor>;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Uniform values in [lo, hi), drawn in float64 and rounded to dt.
Tensor uniform(const Shape& s, DType dt, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return add(mul(rand(s, kFloat64, &g), hi - lo), lo).to(dt);
}

// Tensors of shape s (at least 1-d) laid out in different ways, with values in [lo, hi).
struct Layout {
  std::string name;
  Tensor t;
};
std::vector<Layout> layouts(const Shape& s, DType dt, uint64_t seed, double lo, double hi) {
  std::vector<Layout> out;
  out.push_back({"contiguous", uniform(s, dt, seed, lo, hi)});
  int n = s.ndim();
  if (n >= 2) {  // transposed: the last two dims swapped in memory
    Shape m = s;
    std::swap(m[n - 1], m[n - 2]);
    out.push_back({"transposed", uniform(m, dt, seed + 1, lo, hi).transpose(-1, -2)});
  }
  if (n >= 1) {  // every other element of a twice-as-long last dim, after an offset of 1
    Shape m = s;
    m[n - 1] = 2 * s[n - 1] + 1;
    out.push_back({"sliced with step", uniform(m, dt, seed + 2, lo, hi).slice(-1, 1, m[n - 1], 2)});
    Shape one = s;  // expanded: first dim broadcast with stride 0
    one[0] = 1;
    out.push_back({"expanded", uniform(one, dt, seed + 3, lo, hi).expand(s)});
  }
  for (auto& l : out) REQUIRE(l.t.shape() == s);
  return out;
}

// ---------------------------------------------------------------- unary

struct UnaryCase {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;  // the formula, in float64
  double lo, hi;                       // input range for the forward test
};

double sigmoid_ref(double x) { return 0.5 * (1.0 + std::tanh(0.5 * x)); }

std::vector<UnaryCase> unary_cases() {
  const double k = std::sqrt(2.0 / M_PI);
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -3, 3},
      {"operator-", [](const Tensor& x) { return -x; }, [](double x) { return -x; }, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -5, 5},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.01, 10},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0, 10},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.01, 10},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return x < 0 ? -x : x; }, -3, 3},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -5, 5},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, -20, 20},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, -3, 3},
      // gelu(x) = x·Φ(x), Φ(x) = erfc(-x/√2)/2 (erfc keeps Φ accurate for negative x)
      {"gelu erf", [](const Tensor& x) { return gelu(x); },
       [](double x) { return x * 0.5 * std::erfc(-x / std::sqrt(2.0)); }, -6, 6},
      // gelu_tanh(x) = x/2·(1 + tanh(u)) = x·sigmoid(2u), u = √(2/π)(x + 0.044715x³)
      {"gelu tanh", [](const Tensor& x) { return gelu(x, GeluApprox::Tanh); },
       [k](double x) { return x / (1 + std::exp(-2 * k * (x + 0.044715 * x * x * x))); }, -6, 6},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, -3, 3},
      {"pow 1", [](const Tensor& x) { return pow(x, 1.0); }, [](double x) { return x; }, -3, 3},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, [](double x) { return x * x; }, -3, 3},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return x * x * x; }, -3, 3},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, [](double x) { return std::sqrt(x); }, 0, 5},
      {"pow -1", [](const Tensor& x) { return pow(x, -1.0); }, [](double x) { return 1 / x; }, 0.1, 5},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, [](double x) { return x * x * std::sqrt(x); }, 0, 5},
  };
}

// Tolerances of a result against the float64 formula evaluated at the (rounded) input.
double rtol_of(DType dt) { return dt == kFloat64 ? 1e-13 : 3e-6; }
double atol_of(DType dt) { return dt == kFloat64 ? 1e-14 : 1e-6; }

}  // namespace

TEST_CASE("unary ops match their formulas on every layout, float64 and float32") {
  for (const UnaryCase& c : unary_cases()) {
    for (DType dt : {kFloat64, kFloat32}) {
      std::vector<Layout> ls = layouts({5, 7}, dt, 10, c.lo, c.hi);
      ls.push_back({"0-d", uniform({}, dt, 11, c.lo, c.hi)});
      ls.push_back({"1-d", uniform({37}, dt, 12, c.lo, c.hi)});
      ls.push_back({"empty", uniform({0, 3}, dt, 13, c.lo, c.hi)});
      for (const Layout& l : ls) {
        std::string what = c.name + " " + dtype_name(dt) + " " + l.name;
        CAPTURE(what);
        std::vector<double> in = values(l.t), want;
        for (double v : in) want.push_back(c.ref(v));
        Tensor y = c.op(l.t);
        CHECK(y.dtype() == dt);
        CHECK(y.is_contiguous());
        CHECK(!y.requires_grad());
        check_ref(y, l.t.shape(), want, rtol_of(dt), atol_of(dt), what);
      }
    }
  }
}

TEST_CASE("unary ops: special values") {
  struct S {
    std::string name;
    std::function<Tensor(const Tensor&)> op;
    std::vector<double> x, y;  // inputs and expected outputs, the same in float32 and float64
    double rtol;
  };
  const double g1 = 0.5 * std::erfc(-1 / std::sqrt(2.0));  // Φ(1)
  std::vector<S> ss = {
      // sigmoid never overflows: e^-x is only taken for x >= 0, e^x for x < 0.
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); },
       {-kInf, -1000, -1, 0, 1, 1000, kInf, kNaN}, {0, 0, sigmoid_ref(-1), 0.5, sigmoid_ref(1), 1, 1, kNaN}, 1e-6},
      {"tanh", [](const Tensor& x) { return tanh(x); },
       {-kInf, -1000, -1, 0, 1, 1000, kInf, kNaN}, {-1, -1, std::tanh(-1.0), 0, std::tanh(1.0), 1, 1, kNaN}, 1e-6},
      {"exp", [](const Tensor& x) { return exp(x); },
       {-kInf, -1000, 0, 1, 1000, kInf, kNaN}, {0, 0, 1, std::exp(1.0), kInf, kInf, kNaN}, 1e-6},
      // relu and abs propagate NaN (as PyTorch does); relu(-0) may be ±0.
      {"relu", [](const Tensor& x) { return relu(x); },
       {-kInf, -1000, -1, 0, 1, 1000, kInf, kNaN}, {0, 0, 0, 0, 1, 1000, kInf, kNaN}, 0},
      {"abs", [](const Tensor& x) { return abs(x); },
       {-kInf, -1000, -1, -0.0, 1, 1000, kInf, kNaN}, {kInf, 1000, 1, 0, 1, 1000, kInf, kNaN}, 0},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       {-1000, -1, 0, 1, 1000, kInf, kNaN}, {0, -(1 - g1), 0, g1, 1000, kInf, kNaN}, 1e-6},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, GeluApprox::Tanh); },
       {-1000, 0, 1000, kInf, kNaN}, {0, 0, 1000, kInf, kNaN}, 1e-6},
      // log/sqrt/rsqrt at the edges of their domain follow IEEE.
      {"log", [](const Tensor& x) { return log(x); }, {0, -1, kInf, kNaN}, {-kInf, kNaN, kInf, kNaN}, 0},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, {0, -1, kInf}, {0, kNaN, kInf}, 0},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, {0, -1, kInf}, {kInf, kNaN, 0}, 0},
      // x^0 = 1 for every x, 0 and inf too; x^-1 at 0 is inf.
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, {0, -1, kInf}, {1, 1, 1}, 0},
      {"pow -1", [](const Tensor& x) { return pow(x, -1.0); }, {0, -2, kInf}, {kInf, -0.5, 0}, 0},
  };
  for (DType dt : {kFloat64, kFloat32}) {
    for (const S& s : ss) {
      Tensor x = from_vector<double>(s.x).to(dt);
      check_ref(s.op(x), x.shape(), s.y, s.rtol, 1e-30, s.name + " " + dtype_name(dt));
    }
  }
  // Tiny sigmoid values keep full relative precision (e^x / (1 + e^x) for x < 0).
  check_ref(sigmoid(from_vector<double>({-100, -700})), {2},
            {1 / (1 + std::exp(100.0)), 1 / (1 + std::exp(700.0))}, 1e-13, 0, "sigmoid tails f64");
  check_ref(sigmoid(from_vector<float>({-80, -30})), {2}, {1 / (1 + std::exp(80.0)), 1 / (1 + std::exp(30.0))},
            1e-5, 0, "sigmoid tails f32");
  // float32 range: e^100 overflows to inf, e^-110 underflows to 0.
  check_ref(exp(from_vector<float>({100, -110})), {2}, {kInf, 0}, 0, 0, "exp f32 range");
}

TEST_CASE("unary gradients: gradcheck, and exact values at kinks and large |x|") {
  // Inputs kept away from the kinks of abs/relu and inside each op's domain.
  struct G {
    std::string name;
    std::function<Tensor(const Tensor&)> op;
    double lo, hi;
    bool signed_away_from_zero;
  };
  std::vector<G> gs = {
      {"neg", [](const Tensor& x) { return neg(x); }, -3, 3, false},
      {"exp", [](const Tensor& x) { return exp(x); }, -3, 3, false},
      {"log", [](const Tensor& x) { return log(x); }, 0.2, 5, false},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.2, 5, false},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.2, 5, false},
      {"abs", [](const Tensor& x) { return abs(x); }, 0.1, 3, true},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3, false},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -8, 8, false},
      {"relu", [](const Tensor& x) { return relu(x); }, 0.1, 3, true},
      {"gelu erf", [](const Tensor& x) { return gelu(x); }, -5, 5, false},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, GeluApprox::Tanh); }, -5, 5, false},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, -3, 3, false},
      {"pow 1", [](const Tensor& x) { return pow(x, 1.0); }, -3, 3, false},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, -3, 3, false},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, -3, 3, false},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, 0.2, 5, false},
      {"pow -1", [](const Tensor& x) { return pow(x, -1.0); }, 0.2, 5, false},
      {"pow -2.5", [](const Tensor& x) { return pow(x, -2.5); }, 0.2, 5, false},
  };
  for (const G& g : gs) {
    CAPTURE(g.name);
    Tensor x = uniform({3, 5}, kFloat64, 20, g.lo, g.hi);
    if (g.signed_away_from_zero) x = mul(x, sub(mul(gt(uniform({3, 5}, kFloat64, 21, 0, 1), 0.5).to(kFloat64), 2.0), 1.0));
    x = x.detach().requires_grad_();
    check_gradcheck([&](const In& in) { return g.op(in[0]); }, {x});
    // Through a non-contiguous input as well.
    Tensor xt = uniform({5, 3}, kFloat64, 22, std::max(g.lo, g.signed_away_from_zero ? 0.1 : g.lo), g.hi)
                    .detach().requires_grad_();
    check_gradcheck([&](const In& in) { return g.op(in[0].t()); }, {xt});
  }
  for (DType dt : {kFloat64, kFloat32}) {
    CAPTURE(dtype_name(dt));
    // At the kinks the gradient is 0 (the subgradient PyTorch also picks).
    Tensor z = zeros({2}, dt).requires_grad_();
    sum(add(abs(z), relu(z))).backward();
    check_ref(z.grad(), {2}, {0, 0}, 0, 0, "abs+relu at 0");
    // Saturated sigmoid/tanh/gelu have gradient 0 (or 1), never NaN.
    Tensor x = from_vector<double>({-1000, -100, 100, 1000}).to(dt).requires_grad_();
    sum(sigmoid(x)).backward();
    check_ref(x.grad(), {4}, {0, sigmoid_ref(-100) * sigmoid_ref(100), sigmoid_ref(-100) * sigmoid_ref(100), 0},
              1e-6, 1e-30, "sigmoid'");
    x.zero_grad();
    sum(tanh(x)).backward();
    check_ref(x.grad(), {4}, {0, 0, 0, 0}, 0, 0, "tanh'");
    x.zero_grad();
    sum(gelu(x)).backward();
    check_ref(x.grad(), {4}, {0, 0, 1, 1}, 0, 0, "gelu'");
    x.zero_grad();
    sum(gelu(x, GeluApprox::Tanh)).backward();
    check_ref(x.grad(), {4}, {0, 0, 1, 1}, 0, 0, "gelu_tanh'");
    // pow: d/dx x^0 = 0 (also at x = 0), x^1 -> 1, x^2 -> 2x, x^-1 -> -1/x^2.
    Tensor p = from_vector<double>({0, 2, -3}).to(dt).requires_grad_();
    sum(pow(p, 0.0)).backward();
    check_ref(p.grad(), {3}, {0, 0, 0}, 0, 0, "pow 0'");
    p.zero_grad();
    sum(pow(p, 1.0)).backward();
    check_ref(p.grad(), {3}, {1, 1, 1}, 0, 0, "pow 1'");
    p.zero_grad();
    sum(pow(p, 2.0)).backward();
    check_ref(p.grad(), {3}, {0, 4, -6}, 0, 0, "pow 2'");
    Tensor q = from_vector<double>({2, -4}).to(dt).requires_grad_();
    sum(pow(q, -1.0)).backward();
    check_ref(q.grad(), {2}, {-0.25, -1.0 / 16}, 1e-7, 0, "pow -1'");
  }
}

TEST_CASE("unary ops: bad input") {
  check_error([] { exp(zeros({2}, kInt64)); }, "exp: expected a float32 or float64 tensor, got int64");
  check_error([] { sigmoid(zeros({2}, kBool)); }, "sigmoid");
  check_error([] { gelu(Tensor()); }, "undefined");
  check_error([] { pow(arange(3), 2.0); }, "pow");
}

// ---------------------------------------------------------------- binary

namespace {

using BinFn = std::function<Tensor(const Tensor&, const Tensor&)>;

struct BinaryCase {
  std::string name;
  BinFn op;
  float (*ref32)(float, float);  // the formula in the tensor's own precision
  double (*ref64)(double, double);
  bool positive_b;  // b kept away from 0 (div)
};

#define AFT_REF(expr) +[](float x, float y) -> float { return expr; }, +[](double x, double y) -> double { return expr; }

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, AFT_REF(x + y), false},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, AFT_REF(x - y), false},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, AFT_REF(x * y), false},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, AFT_REF(x / y), true},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       AFT_REF(std::isnan(x) || std::isnan(y) ? x + y : std::max(x, y)), false},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       AFT_REF(std::isnan(x) || std::isnan(y) ? x + y : std::min(x, y)), false},
      {"operator+", [](const Tensor& a, const Tensor& b) { return a + b; }, AFT_REF(x + y), false},
      {"operator-", [](const Tensor& a, const Tensor& b) { return a - b; }, AFT_REF(x - y), false},
      {"operator*", [](const Tensor& a, const Tensor& b) { return a * b; }, AFT_REF(x * y), false},
      {"operator/", [](const Tensor& a, const Tensor& b) { return a / b; }, AFT_REF(x / y), true},
  };
}

// out = op(a, b) against the formula applied by a hand-written broadcasting loop. The
// reference is computed in the tensors' precision, so the result must match exactly.
void check_binary(const BinaryCase& c, const Tensor& a, const Tensor& b, const std::string& what) {
  Shape s = ref_broadcast(a.shape(), b.shape());
  std::vector<double> va = values(a), vb = values(b), want(static_cast<size_t>(s.numel()));
  for (int64_t i = 0; i < s.numel(); ++i) {
    std::vector<int64_t> idx = unravel(i, s);
    double x = va[ref_source(idx, a.shape())], y = vb[ref_source(idx, b.shape())];
    want[i] = a.dtype() == kFloat32 ? c.ref32(static_cast<float>(x), static_cast<float>(y)) : c.ref64(x, y);
  }
  Tensor out = c.op(a, b);
  CHECK(out.dtype() == a.dtype());
  CHECK(out.is_contiguous());
  check_ref(out, s, want, 0, 0, c.name + " " + what);
}

}  // namespace

TEST_CASE("binary ops broadcast like NumPy, float64 and float32") {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3}, {2, 3}},    {{3, 1}, {1, 4}}, {{4}, {2, 3, 4}}, {{2, 3, 4}, {4}},  {{2, 1, 4}, {3, 1}},
      {{}, {2, 3}},        {{2, 3}, {}},     {{}, {}},         {{1}, {}},         {{5, 1, 3}, {1, 4, 1}},
      {{0, 3}, {1, 3}},    {{2, 0}, {2, 1}}, {{0}, {}},        {{3, 0, 2}, {0, 1}}, {{1, 1, 1}, {6}},
  };
  for (const BinaryCase& c : binary_cases()) {
    for (DType dt : {kFloat64, kFloat32}) {
      int k = 0;
      for (const auto& [sa, sb] : pairs) {
        Tensor a = uniform(sa, dt, 30 + k, -2, 2);
        Tensor b = uniform(sb, dt, 60 + k, c.positive_b ? 0.5 : -2, 2);
        ++k;
        check_binary(c, a, b, fmt::format("{} {} x {}", dtype_name(dt), sa, sb));
        check_binary(c, b, a, fmt::format("{} {} x {} (swapped)", dtype_name(dt), sb, sa));
      }
    }
  }
}

TEST_CASE("binary ops on non-contiguous operands") {
  for (const BinaryCase& c : binary_cases()) {
    for (DType dt : {kFloat64, kFloat32}) {
      std::vector<Layout> as = layouts({3, 4}, dt, 70, -2, 2);
      std::vector<Layout> bs = layouts({3, 4}, dt, 80, c.positive_b ? 0.5 : -2, 2);
      for (const Layout& la : as)
        for (const Layout& lb : bs)
          check_binary(c, la.t, lb.t, fmt::format("{} {} x {}", dtype_name(dt), la.name, lb.name));
      // Broadcast on top of a non-contiguous operand: [3, 4] (transposed) x [4] (stepped slice).
      Tensor row = uniform({9}, dt, 90, c.positive_b ? 0.5 : -2, 2).slice(0, 0, 8, 2);
      check_binary(c, as[1].t, row, fmt::format("{} transposed x stepped row", dtype_name(dt)));
      check_binary(c, row.unsqueeze(1).expand({4, 3}).t(), as[2].t,
                   fmt::format("{} expanded+transposed x sliced", dtype_name(dt)));
    }
  }
}

TEST_CASE("elementwise results do not depend on the thread count") {
  // Big enough for several chunks; non-contiguous so chunks start mid-row.
  int nt = num_threads();
  Tensor a = uniform({257, 301}, kFloat32, 100, -2, 2).t();      // [301, 257]
  Tensor b = uniform({257 * 2}, kFloat32, 101, 0.5, 2).slice(0, 0, 514, 2);  // [257]
  Tensor x = uniform({301, 1, 257}, kFloat64, 102, -3, 3).squeeze(1).t();   // [257, 301]
  std::vector<double> ref_exp;
  for (int threads : {1, 2, 3, 7}) {
    set_num_threads(threads);
    CAPTURE(threads);
    check_binary(binary_cases()[3], a, b, "div big");
    Tensor e = exp(x);
    std::vector<double> v = values(e);
    if (ref_exp.empty()) ref_exp = v;
    CHECK(v == ref_exp);
  }
  set_num_threads(nt);
}

TEST_CASE("binary gradients: gradcheck with broadcasting and non-contiguous operands") {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}}, {{3, 1}, {1, 4}}, {{4}, {2, 3, 4}}, {{}, {2, 3}}, {{2, 3}, {}}, {{2, 1, 3}, {4, 1}}};
  for (const BinaryCase& c : binary_cases()) {
    int k = 0;
    for (const auto& [sa, sb] : pairs) {
      CAPTURE(c.name);
      CAPTURE(to_string(sa));
      CAPTURE(to_string(sb));
      Tensor a = uniform(sa, kFloat64, 110 + k, -2, 2).requires_grad_();
      Tensor b = uniform(sb, kFloat64, 130 + k, c.positive_b ? 0.5 : -2, 2).requires_grad_();
      ++k;
      check_gradcheck([&](const In& in) { return c.op(in[0], in[1]); }, {a, b});
      // Only one operand requiring grad.
      Tensor bc = b.detach();
      check_gradcheck([&](const In& in) { return c.op(in[0], bc); }, {a});
      Tensor ac = a.detach();
      check_gradcheck([&](const In& in) { return c.op(ac, in[0]); }, {b});
    }
    // Non-contiguous: a transposed, b a stepped slice broadcast over rows.
    Tensor a = uniform({4, 3}, kFloat64, 150, -2, 2).requires_grad_();
    Tensor b = uniform({9}, kFloat64, 151, c.positive_b ? 0.5 : -2, 2).requires_grad_();
    check_gradcheck([&](const In& in) { return c.op(in[0].t(), in[1].slice(0, 1, 9, 2)); }, {a, b});
    // The same tensor on both sides.
    Tensor bb = add(b.detach(), 1.0).detach().requires_grad_();
    check_gradcheck([&](const In& in) { return c.op(in[0], in[0].unsqueeze(0).squeeze(0)); }, {bb});
  }
}

TEST_CASE("maximum/minimum: ties send the gradient to a, NaN propagates") {
  for (DType dt : {kFloat64, kFloat32}) {
    CAPTURE(dtype_name(dt));
    Tensor a = from_vector<double>({1, 2, 3, 5}).to(dt).requires_grad_();
    Tensor b = from_vector<double>({1, 1, 4, 5}).to(dt).requires_grad_();
    Tensor mx = maximum(a, b);
    check_ref(mx, {4}, {1, 2, 4, 5}, 0, 0, "maximum");
    sum(mx).backward();
    check_ref(a.grad(), {4}, {1, 1, 0, 1}, 0, 0, "maximum da");
    check_ref(b.grad(), {4}, {0, 0, 1, 0}, 0, 0, "maximum db");
    a.zero_grad();
    b.zero_grad();
    Tensor mn = minimum(a, b);
    check_ref(mn, {4}, {1, 1, 3, 5}, 0, 0, "minimum");
    sum(mn).backward();
    check_ref(a.grad(), {4}, {1, 0, 1, 1}, 0, 0, "minimum da");
    check_ref(b.grad(), {4}, {0, 1, 0, 0}, 0, 0, "minimum db");
    // Broadcast ties: a scalar b ties with two elements of a; a gets those, b the rest.
    Tensor x = from_vector<double>({0, 2, 2, 3}).to(dt).requires_grad_();
    Tensor s = scalar_tensor(2, dt).requires_grad_();
    sum(maximum(x, s)).backward();
    check_ref(x.grad(), {4}, {0, 1, 1, 1}, 0, 0, "maximum broadcast da");
    check_ref(s.grad(), {}, {1}, 0, 0, "maximum broadcast db");
    // NaN on either side gives NaN, as in NumPy.
    Tensor p = from_vector<double>({kNaN, 1, kNaN, -kInf}).to(dt);
    Tensor q = from_vector<double>({1, kNaN, kNaN, 0}).to(dt);
    check_ref(maximum(p, q), {4}, {kNaN, kNaN, kNaN, 0}, 0, 0, "maximum NaN");
    check_ref(minimum(p, q), {4}, {kNaN, kNaN, kNaN, -kInf}, 0, 0, "minimum NaN");
    check_ref(maximum(q, p), {4}, {kNaN, kNaN, kNaN, 0}, 0, 0, "maximum NaN swapped");
  }
}

TEST_CASE("scalar forms and operators: the scalar takes the tensor's dtype") {
  const double s = 0.1;  // not exact in binary: float32 must use 0.1f, not 0.1
  for (DType dt : {kFloat64, kFloat32}) {
    CAPTURE(dtype_name(dt));
    for (const Layout& l : layouts({3, 4}, dt, 160, 0.5, 3)) {
      CAPTURE(l.name);
      const Tensor& a = l.t;
      std::vector<double> va = values(a);
      struct S {
        std::string name;
        Tensor out;
        float (*ref32)(float, float);
        double (*ref64)(double, double);
      };
      // ref(x, c): x the tensor's element, c the scalar.
      std::vector<S> forms = {
          {"add(a, s)", add(a, s), AFT_REF(x + y)},       {"sub(a, s)", sub(a, s), AFT_REF(x - y)},
          {"sub(s, a)", sub(s, a), AFT_REF(y - x)},       {"mul(a, s)", mul(a, s), AFT_REF(x * y)},
          {"div(a, s)", div(a, s), AFT_REF(x / y)},       {"div(s, a)", div(s, a), AFT_REF(y / x)},
          {"a + s", a + s, AFT_REF(x + y)},               {"s + a", s + a, AFT_REF(y + x)},
          {"a - s", a - s, AFT_REF(x - y)},               {"s - a", s - a, AFT_REF(y - x)},
          {"a * s", a * s, AFT_REF(x * y)},               {"s * a", s * a, AFT_REF(y * x)},
          {"a / s", a / s, AFT_REF(x / y)},               {"s / a", s / a, AFT_REF(y / x)},
      };
      for (const S& f : forms) {
        std::vector<double> want;
        for (double x : va)
          want.push_back(dt == kFloat32 ? f.ref32(static_cast<float>(x), static_cast<float>(s)) : f.ref64(x, s));
        CHECK(f.out.dtype() == dt);
        check_ref(f.out, a.shape(), want, 0, 0, f.name);
      }
    }
    // 0-d and empty tensors.
    check_ref(sub(2.0, scalar_tensor(0.5, dt)), {}, {1.5}, 0, 0, "sub(s, 0-d)");
    check_ref(div(1.0, zeros({0, 2}, dt)), {0, 2}, {}, 0, 0, "div(s, empty)");
    // Division by zero follows IEEE.
    check_ref(div(from_vector<double>({1, -1, 0}).to(dt), 0.0), {3}, {kInf, -kInf, kNaN}, 0, 0, "x / 0");
    check_ref(div(1.0, from_vector<double>({0, -0.0}).to(dt)), {2}, {kInf, -kInf}, 0, 0, "1 / x");
  }
}

TEST_CASE("scalar forms: gradients") {
  Tensor a = uniform({3, 4}, kFloat64, 170, 0.5, 3).requires_grad_();
  const double s = 1.7;
  std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> fs = {
      {"add(a, s)", [&](const Tensor& x) { return add(x, s); }},
      {"sub(a, s)", [&](const Tensor& x) { return sub(x, s); }},
      {"sub(s, a)", [&](const Tensor& x) { return sub(s, x); }},
      {"mul(a, s)", [&](const Tensor& x) { return mul(x, s); }},
      {"div(a, s)", [&](const Tensor& x) { return div(x, s); }},
      {"div(s, a)", [&](const Tensor& x) { return div(s, x); }},
      {"s + a", [&](const Tensor& x) { return s + x; }},
      {"s - a", [&](const Tensor& x) { return s - x; }},
      {"s * a", [&](const Tensor& x) { return s * x; }},
      {"s / a", [&](const Tensor& x) { return s / x; }},
      {"-a", [&](const Tensor& x) { return -x; }},
      {"(s - a.t()) / s", [&](const Tensor& x) { return (s - x.t()) / s; }},
  };
  for (const auto& [name, f] : fs) {
    CAPTURE(name);
    check_gradcheck([&](const In& in) { return f(in[0]); }, {a});
  }
  // Hand-derived: d(s/a)/da = -s/a², d(s - a)/da = -1.
  Tensor x = from_vector<double>({2, -4}).requires_grad_();
  sum(div(3.0, x)).backward();
  check_ref(x.grad(), {2}, {-0.75, -3.0 / 16}, 1e-15, 0, "d(3/x)");
  x.zero_grad();
  sum(sub(3.0, x)).backward();
  check_ref(x.grad(), {2}, {-1, -1}, 0, 0, "d(3-x)");
}

TEST_CASE("ops save for backward only what a gradient needs") {
  // A saved tensor holds a reference to its storage; count them.
  Tensor a = uniform({4}, kFloat64, 180, 1, 2).requires_grad_();
  Tensor b = uniform({4}, kFloat64, 181, 1, 2);
  const long a0 = a.storage().use_count(), b0 = b.storage().use_count();
  Tensor y = mul(a, b);  // da = g·b: b saved, a not
  CHECK(a.storage().use_count() == a0);
  CHECK(b.storage().use_count() == b0 + 1);
  Tensor z = add(a, b);  // nothing saved
  CHECK(a.storage().use_count() == a0);
  CHECK(b.storage().use_count() == b0 + 1);
  Tensor w = div(a, b);  // da = g/b: the divisor saved; db not needed, so not the output
  CHECK(a.storage().use_count() == a0);
  CHECK(b.storage().use_count() == b0 + 2);
  CHECK(w.storage().use_count() == 1);
  Tensor v = div(b, a);  // db = -g·out/a needs the output as well as the divisor a
  CHECK(a.storage().use_count() == a0 + 1);
  CHECK(v.storage().use_count() == 2);
  Tensor e = exp(a);  // saves its output, not its input
  CHECK(a.storage().use_count() == a0 + 1);
  CHECK(e.storage().use_count() == 2);
  Tensor r = relu(b);  // b does not require grad: nothing recorded
  CHECK(!r.requires_grad());
  CHECK(b.storage().use_count() == b0 + 2);
  y = Tensor();  // dropping the only output frees what its node saved
  CHECK(b.storage().use_count() == b0 + 1);
  autograd::clear_tape();
}

// ---------------------------------------------------------------- comparisons and where

TEST_CASE("comparisons: bool masks with broadcasting, scalars, NaN, int64") {
  using Ref = bool (*)(double, double);
  struct C {
    std::string name;
    BinFn op;
    std::function<Tensor(const Tensor&, double)> op_s;
    Ref ref;
  };
  std::vector<C> cs = {
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, [](const Tensor& a, double s) { return eq(a, s); }, +[](double x, double y) { return x == y; }},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, [](const Tensor& a, double s) { return ne(a, s); }, +[](double x, double y) { return x != y; }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, [](const Tensor& a, double s) { return lt(a, s); }, +[](double x, double y) { return x < y; }},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }, [](const Tensor& a, double s) { return le(a, s); }, +[](double x, double y) { return x <= y; }},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, [](const Tensor& a, double s) { return gt(a, s); }, +[](double x, double y) { return x > y; }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, [](const Tensor& a, double s) { return ge(a, s); }, +[](double x, double y) { return x >= y; }},
  };
  // Small integers so that equal values occur; NaN and -inf in a (float dtypes).
  for (const C& c : cs) {
    for (DType dt : {kFloat64, kFloat32, kInt64}) {
      CAPTURE(c.name);
      CAPTURE(dtype_name(dt));
      Generator g(190);
      Tensor a = randint(-2, 3, {3, 1}, kInt64, &g).to(dt);
      Tensor b = randint(-2, 3, {4}, kInt64, &g).to(dt);
      Tensor at = randint(-2, 3, {4, 3}, kInt64, &g).to(dt).t();  // non-contiguous [3, 4]
      if (dt != kInt64) {
        Tensor na = from_vector<double>({kNaN, 1, -kInf}, {3, 1}).to(dt);
        a = na;
      }
      for (auto [x, y] : {std::pair{a, b}, std::pair{b, a}, std::pair{at, b}, std::pair{at, a},
                          std::pair{a, scalar_tensor(1, dt)}, std::pair{zeros({0, 4}, dt), b}}) {
        Shape s = ref_broadcast(x.shape(), y.shape());
        std::vector<double> vx = values(x), vy = values(y), want;
        for (int64_t i = 0; i < s.numel(); ++i) {
          auto idx = unravel(i, s);
          want.push_back(c.ref(vx[ref_source(idx, x.shape())], vy[ref_source(idx, y.shape())]) ? 1 : 0);
        }
        Tensor out = c.op(x, y);
        CHECK(out.dtype() == kBool);
        CHECK(!out.requires_grad());
        check_ref(out, s, want, 0, 0, c.name);
      }
      // Scalar form.
      std::vector<double> va = values(at), want;
      for (double v : va) want.push_back(c.ref(v, 1.0) ? 1 : 0);
      check_ref(c.op_s(at, 1.0), at.shape(), want, 0, 0, c.name + " scalar");
    }
  }
  // A comparison of tensors requiring grad is not recorded.
  Tensor x = uniform({3}, kFloat64, 191, 0, 1).requires_grad_();
  CHECK(!gt(x, 0.5).requires_grad());
  check_error([] { eq(zeros({2}), zeros({2}, kFloat64)); }, "eq: dtypes differ");
  check_error([] { lt(zeros({2, 3}), zeros({4})); }, "lt: shapes cannot be broadcast: [2, 3] and [4]");
  check_error([] { ge(Tensor(), 1.0); }, "undefined");
}

TEST_CASE("where: broadcast mask and operands, gradients routed by the mask") {
  for (DType dt : {kFloat64, kFloat32, kInt64}) {
    CAPTURE(dtype_name(dt));
    Tensor mask = from_vector<double>({1, 0, 1}, {3, 1}).to(kBool);
    Tensor a = arange(0.0, 4.0, 1.0, dt).reshape({1, 4});
    Tensor b = scalar_tensor(-7, dt);
    Tensor at = arange(0.0, 12.0, 1.0, dt).reshape({4, 3}).t();  // non-contiguous [3, 4]
    for (auto [m, x, y] : {std::tuple{mask, a, b}, std::tuple{mask, b, a}, std::tuple{mask, at, a},
                           std::tuple{lt(at, 5.0), at, b}, std::tuple{mask.reshape({3}).unsqueeze(0).t(), at, at}}) {
      Shape s = ref_broadcast(ref_broadcast(m.shape(), x.shape()), y.shape());
      std::vector<double> vm = values(m), vx = values(x), vy = values(y), want;
      for (int64_t i = 0; i < s.numel(); ++i) {
        auto idx = unravel(i, s);
        want.push_back(vm[ref_source(idx, m.shape())] != 0 ? vx[ref_source(idx, x.shape())]
                                                           : vy[ref_source(idx, y.shape())]);
      }
      Tensor out = where(m, x, y);
      CHECK(out.dtype() == dt);
      check_ref(out, s, want, 0, 0, "where");
    }
  }
  // Gradients: a [1, 4] broadcast over the 3 rows gets the number of true rows per column.
  Tensor mask = from_vector<double>({1, 0, 1}, {3, 1}).to(kBool);
  Tensor a = uniform({1, 4}, kFloat64, 200, -1, 1).requires_grad_();
  Tensor b = uniform({3, 4}, kFloat64, 201, -1, 1).requires_grad_();
  sum(where(mask, a, b)).backward();
  check_ref(a.grad(), {1, 4}, {2, 2, 2, 2}, 0, 0, "where da");
  check_ref(b.grad(), {3, 4}, {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, 0, 0, "where db");
  check_gradcheck([&](const In& in) { return where(mask, in[0], in[1]); }, {a, b});
  check_gradcheck([&](const In& in) { return where(mask, in[0].t().t(), scalar_tensor(2.0, kFloat64)); }, {a});
  Tensor s0 = scalar_tensor(0.5, kFloat64).requires_grad_();
  check_gradcheck([&](const In& in) { return where(lt(b.detach(), 0.0), in[0], in[1]); }, {b, s0});
  // Errors.
  check_error([&] { where(a, a, b); }, "where: mask must be a bool tensor, got float64 of shape [1, 4]");
  check_error([&] { where(mask, a, b.to(kFloat32)); }, "where: dtypes differ");
  check_error([&] { where(mask, a, zeros({2, 4}, kFloat64)); }, "where: shapes cannot be broadcast");
  check_error([&] { where(Tensor(), a, b); }, "undefined");
}

// ---------------------------------------------------------------- errors

TEST_CASE("binary ops: bad input") {
  Tensor f = zeros({2, 3}), d = zeros({2, 3}, kFloat64), i = zeros({2, 3}, kInt64);
  check_error([&] { add(f, d); }, "add: dtypes differ: float32 [2, 3] and float64 [2, 3]");
  check_error([&] { mul(d, f); }, "mul: dtypes differ");
  check_error([&] { maximum(f, d); }, "maximum: dtypes differ");
  check_error([&] { sub(i, i); }, "sub: expected a float32 or float64 tensor, got int64 of shape [2, 3]");
  check_error([&] { div(i, 2.0); }, "div: expected a float32 or float64 tensor");
  check_error([&] { add(f, zeros({4})); }, "add: shapes cannot be broadcast: [2, 3] and [4]");
  check_error([&] { minimum(zeros({2, 0}), zeros({3})); }, "minimum: shapes cannot be broadcast");
  check_error([&] { f + Tensor(); }, "undefined");
  check_error([&] { 2.0 - Tensor(); }, "undefined");
  if (cuda::is_available()) {
    Tensor g = zeros({2, 3}, Device::cuda());
    check_error([&] { add(f, g); }, "add: tensors are on different devices");
    check_error([&] { where(lt(f, 1.0), f, g); }, "where: tensors are on different devices");
    check_error([&] { eq(g, f); }, "eq: tensors are on different devices");
  } else {
    MESSAGE("no CUDA device: device-mismatch errors not exercised (" << cuda::unavailable_reason() << ")");
  }
}
