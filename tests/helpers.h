// tests/helpers.h: what the tests share: comparisons with tolerances, random inputs, gradcheck
// with a doctest failure message, and the skip rule of CUDA tests.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "aft.h"

#if AFT_CUDA_EMULATE
#include "cuda/emu/emulator.h"
#endif

namespace aft::test {

// Every element of a and b (any dtype/device, same shape) within atol + rtol * |b|.
inline void check_close(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-6,
                        const std::string& what = "") {
  REQUIRE_MESSAGE(a.shape() == b.shape(), what, ": shapes ", to_string(a.shape()), " vs ", to_string(b.shape()));
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    bool both_nan = std::isnan(va[i]) && std::isnan(vb[i]);
    bool same_inf = std::isinf(va[i]) && va[i] == vb[i];
    if (both_nan || same_inf) continue;
    double excess = std::fabs(va[i] - vb[i]) - (atol + rtol * std::fabs(vb[i]));
    if (!(excess <= worst)) {
      worst = std::isnan(excess) ? INFINITY : excess;
      worst_i = i;
    }
  }
  CHECK_MESSAGE(worst <= 0, what, ": element ", worst_i, " differs: ", va.empty() ? 0.0 : va[worst_i],
                " vs ", vb.empty() ? 0.0 : vb[worst_i]);
}

inline void check_values(const Tensor& a, const std::vector<double>& expected, double tol = 1e-6) {
  std::vector<double> v = a.to_vector<double>();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK_MESSAGE(std::fabs(v[i] - expected[i]) <= tol, "element ", i, ": ", v[i], " vs ", expected[i]);
}

// A float64 leaf requiring grad, values N(0, 1) scaled.
inline Tensor leaf(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  Tensor t = mul(randn(shape, kFloat64, &g), scale);
  return t.detach().requires_grad_();
}

inline void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            const std::vector<Tensor>& inputs, GradcheckOptions opts = {}) {
  GradcheckResult r = gradcheck(f, inputs, opts);
  CHECK_MESSAGE(r.ok, "gradcheck failed: ", r.worst, " (max abs error ", r.max_abs_error, ")");
}

// Runs f and checks it throws aft::Error whose message contains `needle`.
template <class F>
void check_error(F&& f, const std::string& needle) {
  try {
    f();
    FAIL("expected aft::Error containing '" << needle << "'");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK_MESSAGE(msg.find(needle) != std::string::npos, "message '", msg, "' lacks '", needle, "'");
  }
}

// Runs body once, or, in the EMULATE build, once per thread order of the SIMT emulator
// (forward, reverse, shuffled): a kernel with a missing barrier then fails in some order.
template <class F>
void for_each_order(F&& body) {
#if AFT_CUDA_EMULATE
  for (const cuda::emu::Options& o : cuda::emu::standard_orders()) {
    cuda::emu::ScopedOptions scope(o);
    INFO("emulator order ", cuda::emu::describe_order(o));
    body();
  }
#else
  body();
#endif
}

// For tests of tests/cuda/: exits with 77 (ctest: skipped) when no CUDA device is usable.
inline void require_cuda_or_skip() {
  if (!cuda::is_available()) {
    std::fprintf(stderr, "skipped: no CUDA device (%s)\n", cuda::unavailable_reason().c_str());
    std::exit(77);
  }
}

}  // namespace aft::test
