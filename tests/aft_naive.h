// tests/aft_naive.h: the obviously-correct O(T²·D) AFT that the tests of ops/aft_*.cpp compare
// against, in float64, and the helpers those tests share.
//
// naive_aft() evaluates the formula of ops/ops.h literally, one (batch, row t, channel d) at a
// time: the sum over every key t' in the row's support of e^{k[t'] + w(t, t')} v[t'], divided by
// the same sum without v, with the row's largest exponent subtracted first (so the reference
// itself is exact in float64 for |k|, |w| <= 80). With an upstream gradient g it also gives the
// gradients, from their definitions (a = attention weight of key t' in row t):
//   dq = g r sigmoid'(q), dv[t'] = Σ_t gr a, dk[t'] = Σ_t gr a (v[t'] - r[t]), dw = Σ gr a (v - r)
// It knows nothing of tiles, prefix sums or running maxima: a variant is described only by
// which keys a row sees (support) and where its bias comes from (widx).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "helpers.h"
#include "reference.h"

namespace aft::test {

struct NaiveAft {
  int64_t B = 1, T = 1, D = 1;
  std::vector<double> q, k, v;  // [B, T, D]; k already one value per channel
  // Does row t sum key t'?
  std::function<bool(int64_t t, int64_t tp)> support = [](int64_t, int64_t) { return true; };
  // Index into w of the bias of (t, t', channel d), or -1 for bias 0.
  std::function<int64_t(int64_t t, int64_t tp, int64_t d)> widx = [](int64_t, int64_t, int64_t) {
    return int64_t{-1};
  };
  std::vector<double> w;
};

struct NaiveResult {
  std::vector<double> y, dq, dk, dv, dw;  // dk per channel [B, T, D]; dw like w
};

inline NaiveResult naive_aft(const NaiveAft& p, const std::vector<double>* g = nullptr) {
  const int64_t B = p.B, T = p.T, D = p.D;
  NaiveResult out;
  out.y.assign(static_cast<size_t>(B * T * D), 0.0);
  if (g) {
    out.dq = out.dk = out.dv = out.y;
    out.dw.assign(p.w.size(), 0.0);
  }
  auto at = [&](int64_t b, int64_t t, int64_t d) {
    return static_cast<size_t>((b * T + t) * D + d);
  };
  std::vector<double> s(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) {
        double m = -INFINITY;
        for (int64_t tp = 0; tp < T; ++tp) {
          if (!p.support(t, tp)) continue;
          int64_t wi = p.widx(t, tp, d);
          s[tp] = p.k[at(b, tp, d)] + (wi >= 0 ? p.w[static_cast<size_t>(wi)] : 0.0);
          m = std::max(m, s[tp]);
        }
        double num = 0, den = 0;
        for (int64_t tp = 0; tp < T; ++tp) {
          if (!p.support(t, tp)) continue;
          double e = std::exp(s[tp] - m);
          num += e * p.v[at(b, tp, d)];
          den += e;
        }
        const double r = num / den, L = m + std::log(den);
        const double sq = 1.0 / (1.0 + std::exp(-p.q[at(b, t, d)]));
        out.y[at(b, t, d)] = sq * r;
        if (!g) continue;
        const double gt = (*g)[at(b, t, d)], gr = gt * sq;
        out.dq[at(b, t, d)] = gt * r * sq * (1.0 - sq);
        for (int64_t tp = 0; tp < T; ++tp) {
          if (!p.support(t, tp)) continue;
          const double a = std::exp(s[tp] - L);
          const double e = gr * a * (p.v[at(b, tp, d)] - r);
          out.dv[at(b, tp, d)] += gr * a;
          out.dk[at(b, tp, d)] += e;
          int64_t wi = p.widx(t, tp, d);
          if (wi >= 0) out.dw[static_cast<size_t>(wi)] += e;
        }
      }
  return out;
}

// ---- helpers of the AFT tests

// The long-sequence checks (float32 against float64) run at T = 4096 in optimised builds, the
// size the 1e-4 claim is made for; Debug and sanitizer builds (10-50x slower) run the same code
// paths at T = 1024 so the CI's sanitizer pass stays within its time budget.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
inline constexpr int64_t kLongT = 4096;
#else
inline constexpr int64_t kLongT = 1024;
#endif

// N(0, 1)·scale values, float64, not tracked.
inline Tensor randn64(const Shape& s, uint64_t seed, double scale = 1.0) {
  Generator gen(seed);
  return mul(randn(s, kFloat64, &gen), scale);
}

// Uniform in [lo, hi), float64.
inline Tensor uniform64(const Shape& s, uint64_t seed, double lo, double hi) {
  Generator gen(seed);
  return add(mul(rand(s, kFloat64, &gen), hi - lo), lo);
}

// Normwise relative error max|a - b| / max|b| (the measure of the 1e-4 agreement claims).
inline double max_rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return den == 0 ? num : num / den;
}
// (Results are read with to_vector: the reference side never goes through them.)
inline double max_rel_err(const Tensor& a, const std::vector<double>& b) {
  return max_rel_err(a.to_vector<double>(), b);
}
inline double max_rel_err(const Tensor& a, const Tensor& b) {
  return max_rel_err(a.to_vector<double>(), b.to_vector<double>());
}

// max |a - b| and max |b|.
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::isfinite(a[i]) ? std::max(m, std::fabs(a[i] - b[i])) : INFINITY;
  return m;
}
inline double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::fabs(x));
  return m;
}

// Elementwise comparison with a tolerance relative to each element and to the largest one:
// |a - b| <= rtol·(|b| + 1e-3·max|b|) + atol (elements near 0 get the floor; atol is for
// gradients that are exactly 0, e.g. dk at T = 1). Names the worst element.
inline void check_near(const std::vector<double>& a, const std::vector<double>& b, double rtol,
                       const std::string& what, double atol = 1e-12) {
  REQUIRE_MESSAGE(a.size() == b.size(), what);
  double scale = 0;
  for (double x : b) scale = std::max(scale, std::fabs(x));
  size_t worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double tol = rtol * (std::fabs(b[i]) + 1e-3 * scale) + atol;
    double ratio = std::isfinite(a[i]) ? std::fabs(a[i] - b[i]) / tol : INFINITY;
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  CHECK_MESSAGE(worst_ratio <= 1.0, what, ": element ", worst, " is ", a.empty() ? 0.0 : a[worst],
                ", reference ", b.empty() ? 0.0 : b[worst], " (", worst_ratio, "x the tolerance)");
}
inline void check_near(const Tensor& a, const std::vector<double>& b, double rtol,
                       const std::string& what) {
  check_near(values(a), b, rtol, what);
}

// Runs f on the inputs (made float64 leaves requiring grad), back-propagates g, and returns the
// output and the gradients of every input in order.
inline std::vector<Tensor> run_with_grads(
    const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
    const Tensor& g) {
  for (auto& x : inputs) x = x.detach().requires_grad_();
  Tensor y = f(inputs);
  y.backward(g.to(y.dtype()));
  std::vector<Tensor> out{y.detach()};
  for (auto& x : inputs) out.push_back(x.grad());
  return out;
}

}  // namespace aft::test
