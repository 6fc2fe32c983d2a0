// tests/test_aft_bias.cpp: aft_band_bias against the band of the dense product u·vᵀ, and the
// factorised AFT-local it feeds (aft_local(band of u·vᵀ) == aft_full with the banded dense w).
#include "helpers.h"

using namespace aft;
using namespace aft::test;

TEST_CASE("aft_band_bias equals the band of u·vT") {
  for (bool causal : {false, true}) {
    for (int64_t W : {1, 2, 5, 9, 20}) {
      CAPTURE(causal);
      CAPTURE(W);
      const int64_t T = 9, C = 4;
      Tensor u = leaf({T, C}, 1), v = leaf({T, C}, 2);
      Tensor band = aft_band_bias(u, v, W, causal);
      int64_t nb = causal ? W : 2 * W - 1;
      REQUIRE(band.shape() == Shape{T, nb});
      std::vector<double> uu = u.detach().to_vector<double>(), vv = v.detach().to_vector<double>();
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < nb; ++j) {
          int64_t tp = t + j - (W - 1);
          double want = 0;
          if (tp >= 0 && tp < T)
            for (int64_t c = 0; c < C; ++c) want += uu[t * C + c] * vv[tp * C + c];
          CHECK(band.at({t, j}) == doctest::Approx(want).epsilon(1e-12));
        }
      }
      check_gradcheck([W, causal](const std::vector<Tensor>& x) { return aft_band_bias(x[0], x[1], W, causal); },
                      {u, v});
    }
  }
}

TEST_CASE("factorised AFT-local: the band op feeds aft_local like the dense banded bias") {
  const int64_t B = 2, T = 11, D = 3, C = 2, W = 3;
  Tensor q = leaf({B, T, D}, 3), k = leaf({B, T, D}, 4), v = leaf({B, T, D}, 5);
  Tensor u = leaf({T, C}, 6), p = leaf({T, C}, 7);
  for (bool causal : {false, true}) {
    Tensor y = aft_local(q, k, v, aft_band_bias(u, p, W, causal), W, causal);
    // Dense reference: w = u·pᵀ inside the band, 0 outside (AFT-local's definition).
    Tensor dense = matmul(u.detach(), p.detach().t());
    Tensor t_idx = arange(0.0, double(T), 1.0, kFloat64);
    Tensor diff = sub(t_idx.unsqueeze(0), t_idx.unsqueeze(1));  // t' - t
    Tensor inside = lt(abs(diff), double(W));
    Tensor w = where(inside, dense, zeros_like(dense));
    Tensor ref = aft_full(q.detach(), k.detach(), v.detach(), w, causal);
    check_close(y.detach(), ref, 1e-10, 1e-12);
  }
  check_gradcheck([](const std::vector<Tensor>& x) {
    return aft_local(x[0], x[1], x[2], aft_band_bias(x[3], x[4], W, true), W, true);
  }, {q, k, v, u, p});
}

TEST_CASE("aft_band_bias rejects bad input") {
  Tensor u = zeros({5, 2}, kFloat64), v = zeros({5, 3}, kFloat64);
  check_error([&] { aft_band_bias(u, v, 2, false); }, "[T, d']");
  check_error([&] { aft_band_bias(u, u, 0, false); }, "window");
  check_error([&] { aft_band_bias(u, u.to(kFloat32), 2, false); }, "dtype");
}
