// tests/cases/elementwise.cpp: op cases of the elementwise ops: every unary op (and each pow
// exponent class), every binary op with each kind of broadcasting and a non-contiguous
// operand, every scalar form and operator, where, and the comparisons (forward only).
#include "../op_cases.h"


using namespace aft;
using namespace aft::test;

namespace {

// Uniform values in [lo, hi) of shape s, drawn in float64 so that float32 gets the same
// numbers rounded.
Tensor uniform(const Shape& s, DType dt, Device dev, Generator& g, double lo, double hi) {
  return add(mul(rand(s, kFloat64, &g), hi - lo), lo).to(dt).to(dev);
}

// One input in [lo, hi).
std::function<In(DType, Device, uint64_t)> range1(Shape s, double lo, double hi) {
  return [=](DType dt, Device dev, uint64_t seed) {
    Generator g(seed);
    return In{uniform(s, dt, dev, g, lo, hi)};
  };
}

// One input with |x| in [0.1, 3) and random sign: away from the kinks of abs and relu.
In away_from_zero(const Shape& s, DType dt, Device dev, uint64_t seed) {
  Generator g(seed);
  Tensor mag = add(mul(rand(s, kFloat64, &g), 2.9), 0.1);
  Tensor sign = sub(mul(gt(rand(s, kFloat64, &g), 0.5).to(kFloat64), 2.0), 1.0);
  return {mul(mag, sign).to(dt).to(dev)};
}

// Two inputs: a in [-2, 2) of shape sa, b in [0.5, 2) of shape sb (a divisor).
std::function<In(DType, Device, uint64_t)> numer_denom(Shape sa, Shape sb) {
  return [=](DType dt, Device dev, uint64_t seed) {
    Generator g(seed);
    return In{uniform(sa, dt, dev, g, -2, 2), uniform(sb, dt, dev, g, 0.5, 2)};
  };
}

using Fn2 = Tensor (*)(const Tensor&, const Tensor&);

}  // namespace

AFT_OP_CASES(unary) {
  add_case({.name = "neg", .shapes = {{3, 4}}, .fn = [](const In& x) { return neg(x[0]); }});
  add_case({.name = "operator-(x)", .shapes = {{3, 4}}, .fn = [](const In& x) { return -x[0]; }});
  add_case({.name = "exp", .shapes = {{3, 4}}, .fn = [](const In& x) { return exp(x[0]); }});
  // Non-contiguous inputs: the gradient reaches the leaf through a view, which needs strided
  // CUDA copies (not there yet).
  add_case({.name = "exp/transposed", .shapes = {{4, 3}}, .fn = [](const In& x) { return exp(x[0].t()); }});
  add_case({.name = "log", .fn = [](const In& x) { return log(x[0]); }, .make = range1({3, 4}, 0.5, 1.5)});
  add_case({.name = "sqrt", .fn = [](const In& x) { return sqrt(x[0]); }, .make = range1({3, 4}, 0.5, 3)});
  add_case({.name = "rsqrt", .fn = [](const In& x) { return rsqrt(x[0]); }, .make = range1({3, 4}, 0.5, 3)});
  add_case({.name = "abs", .fn = [](const In& x) { return abs(x[0]); }, .make = [](DType dt, Device d, uint64_t sd) { return away_from_zero({3, 4}, dt, d, sd); }});
  add_case({.name = "tanh", .shapes = {{3, 4}}, .fn = [](const In& x) { return tanh(x[0]); }, .scale = 2});
  add_case({.name = "sigmoid", .shapes = {{3, 4}}, .fn = [](const In& x) { return sigmoid(x[0]); }, .scale = 4});
  add_case({.name = "relu", .fn = [](const In& x) { return relu(x[0]); }, .make = [](DType dt, Device d, uint64_t sd) { return away_from_zero({3, 4}, dt, d, sd); }});
  add_case({.name = "gelu", .shapes = {{3, 4}}, .fn = [](const In& x) { return gelu(x[0]); }, .scale = 2});
  add_case({.name = "gelu_tanh", .shapes = {{3, 4}},
            .fn = [](const In& x) { return gelu(x[0], GeluApprox::Tanh); }, .scale = 2});
  add_case({.name = "gelu/sliced", .shapes = {{3, 9}},
            .fn = [](const In& x) { return gelu(x[0].slice(1, 1, 9, 2)); }, .scale = 2});
  add_case({.name = "pow/0", .shapes = {{3, 4}}, .fn = [](const In& x) { return pow(x[0], 0.0); }});
  add_case({.name = "pow/1", .shapes = {{3, 4}}, .fn = [](const In& x) { return pow(x[0], 1.0); }});
  add_case({.name = "pow/2", .shapes = {{3, 4}}, .fn = [](const In& x) { return pow(x[0], 2.0); }});
  add_case({.name = "pow/3", .shapes = {{3, 4}}, .fn = [](const In& x) { return pow(x[0], 3.0); }});
  add_case({.name = "pow/0.5", .fn = [](const In& x) { return pow(x[0], 0.5); }, .make = range1({3, 4}, 0.5, 3)});
  add_case({.name = "pow/-1", .fn = [](const In& x) { return pow(x[0], -1.0); }, .make = range1({3, 4}, 0.5, 3)});
  add_case({.name = "pow/-2.5", .fn = [](const In& x) { return pow(x[0], -2.5); }, .make = range1({3, 4}, 0.5, 3)});
}

AFT_OP_CASES(binary) {
  struct Op {
    const char* name;
    Fn2 fn;
    bool divisor;  // b is kept in [0.5, 2)
  };
  const Op ops[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, false},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, false},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, false},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, true},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, false},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, false},
      {"operator+", [](const Tensor& a, const Tensor& b) { return a + b; }, false},
      {"operator-", [](const Tensor& a, const Tensor& b) { return a - b; }, false},
      {"operator*", [](const Tensor& a, const Tensor& b) { return a * b; }, false},
      {"operator/", [](const Tensor& a, const Tensor& b) { return a / b; }, true},
  };
  struct Pair {
    const char* name;
    Shape a, b;
  };
  const Pair pairs[] = {
      {"same", {3, 4}, {3, 4}},        {"[3,1]x[1,4]", {3, 1}, {1, 4}}, {"[4]x[2,3,4]", {4}, {2, 3, 4}},
      {"[2,3,4]x[3,1]", {2, 3, 4}, {3, 1}}, {"0-d x [2,3]", {}, {2, 3}}, {"[2,3] x 0-d", {2, 3}, {}},
  };
  for (const Op& op : ops) {
    Fn2 f = op.fn;
    for (const Pair& p : pairs) {
      OpCase c{.name = std::string(op.name) + "/" + p.name, .fn = [f](const In& x) { return f(x[0], x[1]); }};
      if (op.divisor) c.make = numer_denom(p.a, p.b);
      else c.shapes = {p.a, p.b};
      add_case(std::move(c));
    }
    // Non-contiguous operands: a transposed, b a stepped slice broadcast over rows.
    OpCase c{.name = std::string(op.name) + "/non-contiguous",
             .fn = [f](const In& x) { return f(x[0].t(), x[1].slice(0, 1, 9, 2)); }};
    if (op.divisor) c.make = numer_denom({4, 3}, {9});
    else c.shapes = {{4, 3}, {9}};
    add_case(std::move(c));
  }
}

AFT_OP_CASES(scalar) {
  // The tensor operand stays in [0.5, 3) so that it can also be a divisor.
  auto mk = range1({3, 4}, 0.5, 3);
  struct S {
    const char* name;
    Tensor (*fn)(const Tensor&);
  };
  const S forms[] = {
      {"add(a,s)", [](const Tensor& a) { return add(a, 1.7); }},
      {"sub(a,s)", [](const Tensor& a) { return sub(a, 1.7); }},
      {"sub(s,a)", [](const Tensor& a) { return sub(1.7, a); }},
      {"mul(a,s)", [](const Tensor& a) { return mul(a, 1.7); }},
      {"div(a,s)", [](const Tensor& a) { return div(a, 1.7); }},
      {"div(s,a)", [](const Tensor& a) { return div(1.7, a); }},
      {"a+s", [](const Tensor& a) { return a + 1.7; }},
      {"s+a", [](const Tensor& a) { return 1.7 + a; }},
      {"a-s", [](const Tensor& a) { return a - 1.7; }},
      {"s-a", [](const Tensor& a) { return 1.7 - a; }},
      {"a*s", [](const Tensor& a) { return a * 1.7; }},
      {"s*a", [](const Tensor& a) { return 1.7 * a; }},
      {"a/s", [](const Tensor& a) { return a / 1.7; }},
      {"s/a", [](const Tensor& a) { return 1.7 / a; }},
  };
  for (const S& f : forms) {
    auto fn = f.fn;
    add_case({.name = std::string("scalar/") + f.name, .fn = [fn](const In& x) { return fn(x[0]); }, .make = mk});
  }
  add_case({.name = "scalar/s/a transposed", .fn = [](const In& x) { return 1.7 / x[0].t(); },
            .make = mk});
}

AFT_OP_CASES(where_compare) {
  // where: a bool mask broadcast against both operands; the mask is not differentiated.
  auto where_make = [](Shape sm, Shape sa, Shape sb) {
    return [=](DType dt, Device dev, uint64_t seed) {
      Generator g(seed);
      Tensor m = gt(rand(sm, kFloat64, &g), 0.5).to(dev);
      return In{m, uniform(sa, dt, dev, g, -2, 2), uniform(sb, dt, dev, g, -2, 2)};
    };
  };
  auto where_fn = [](const In& x) { return where(x[0], x[1], x[2]); };
  add_case({.name = "where/same", .fn = where_fn, .make = where_make({3, 4}, {3, 4}, {3, 4})});
  add_case({.name = "where/broadcast", .fn = where_fn, .make = where_make({3, 1}, {1, 4}, {})});
  add_case({.name = "where/non-contiguous", .fn = [](const In& x) { return where(x[0].t(), x[1].t(), x[2]); },
            .make = where_make({4, 3}, {4, 3}, {3, 4})});
  // Comparisons: no gradient; small integers so that equality occurs.
  auto ints = [](Shape sa, Shape sb) {
    return [=](DType dt, Device dev, uint64_t seed) {
      Generator g(seed);
      return In{randint(-2, 3, sa, kInt64, &g).to(dt).to(dev), randint(-2, 3, sb, kInt64, &g).to(dt).to(dev)};
    };
  };
  const std::pair<const char*, Fn2> cmps[] = {
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }},
  };
  for (const auto& [name, f] : cmps) {
    Fn2 fn = f;
    add_case({.name = std::string(name) + "/broadcast", .fn = [fn](const In& x) { return fn(x[0], x[1]); },
              .make = ints({3, 1}, {4}), .gradcheck = false});
    add_case({.name = std::string(name) + "/scalar",
              .fn = [fn](const In& x) { return fn(x[0].t(), scalar_tensor(0.0, {x[0].dtype(), x[0].device()})); },
              .make = ints({4, 3}, {1}), .gradcheck = false});
  }
}
