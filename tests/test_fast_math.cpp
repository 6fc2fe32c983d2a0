// tests/test_fast_math.cpp: the vectorisable float32 exp/tanh/sigmoid of core/math/fast_math.h
// against double-precision libm, over a dense sweep and at the edges (NaN, ±inf, overflow,
// underflow, tiny arguments).
#include <cmath>
#include <limits>

#include "helpers.h"
#include "core/math/fast_math.h"

using namespace aft::fastm;

namespace {
// Largest relative error of f against ref over [lo, hi] (n points), ignoring |ref| < floor.
template <class F, class R>
double worst_rel(F f, R ref, double lo, double hi, int n, double floor = 1e-30) {
  double worst = 0;
  for (int i = 0; i <= n; ++i) {
    float x = static_cast<float>(lo + (hi - lo) * i / n);
    double want = ref(static_cast<double>(x));
    if (std::fabs(want) < floor) continue;
    worst = std::max(worst, std::fabs(f(x) - want) / std::fabs(want));
  }
  return worst;
}
}  // namespace

TEST_CASE("fast_exp is within 2e-7 relative of exp") {
  double e = worst_rel(fast_exp, [](double x) { return std::exp(x); }, -87.0, 88.7, 2000000, 1.2e-38);
  MESSAGE("fast_exp worst relative error ", e);
  CHECK(e < 2e-7);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fast_exp(0.0f) == 1.0f);
  CHECK(fast_exp(89.0f) == inf);
  CHECK(fast_exp(inf) == inf);
  CHECK(fast_exp(-inf) == 0.0f);
  CHECK(fast_exp(-100.0f) == 0.0f);
  CHECK(std::isnan(fast_exp(std::nanf(""))));
  CHECK(std::isfinite(fast_exp(88.72f)));
}

TEST_CASE("fast_tanh is within 3e-7 relative of tanh, also near 0") {
  double e = worst_rel(fast_tanh, [](double x) { return std::tanh(x); }, -20.0, 20.0, 2000000);
  double e0 = worst_rel(fast_tanh, [](double x) { return std::tanh(x); }, -1e-3, 1e-3, 200000);
  MESSAGE("fast_tanh worst relative error ", e, " (near 0: ", e0, ")");
  CHECK(e < 3e-7);
  CHECK(e0 < 3e-7);
  CHECK(fast_tanh(0.0f) == 0.0f);
  CHECK(fast_tanh(100.0f) == 1.0f);
  CHECK(fast_tanh(-std::numeric_limits<float>::infinity()) == -1.0f);
  CHECK(std::isnan(fast_tanh(std::nanf(""))));
}

TEST_CASE("fast_sigmoid is within 3e-7 relative of the logistic function") {
  double e = worst_rel(fast_sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -80.0, 80.0,
                       2000000, 1e-30);
  MESSAGE("fast_sigmoid worst relative error ", e);
  CHECK(e < 3e-7);
  CHECK(fast_sigmoid(-200.0f) == 0.0f);
  CHECK(fast_sigmoid(200.0f) == 1.0f);
}
