// tests/test_aft_local.cpp: aft_local (ops/aft_local.cpp) against the naive O(T²·D) formula of
// tests/aft_naive.h in float64 (output and the gradients of q, k, v and the band of w), causal and
// not; window = 1, window >= T, T = 1, odd sizes; |k|, |w| up to 80 including the case that
// breaks the "(e^w - 1) correction" form; float32 against float64 at T = 4096; identities with
// aft_full and aft_simple; gradcheck; bad input.
#include "aft_naive.h"

using namespace aft;
using namespace aft::test;

namespace {

int64_t band_cols(int64_t W, bool causal) { return causal ? W : 2 * W - 1; }

// The band layout of ops/ops.h, written out: cell (t, j) holds the bias of t' = t + j - (W - 1).
NaiveAft local_problem(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& wb,
                       int64_t W, bool causal) {
  NaiveAft p;
  p.B = q.size(0), p.T = q.size(1), p.D = q.size(2);
  p.q = values(q), p.k = values(k), p.v = values(v), p.w = values(wb);
  const int64_t nb = band_cols(W, causal);
  if (causal) p.support = [](int64_t t, int64_t tp) { return tp <= t; };
  p.widx = [=](int64_t t, int64_t tp, int64_t) -> int64_t {
    if (std::abs(t - tp) >= W || (causal && tp > t)) return -1;
    return t * nb + (tp - t + W - 1);
  };
  return p;
}

Tensor local_fn(const std::vector<Tensor>& x, int64_t W, bool causal) {
  return aft_local(x[0], x[1], x[2], x[3], W, causal);
}

void check_against_naive(int64_t B, int64_t T, int64_t D, int64_t W, bool causal, uint64_t seed) {
  CAPTURE(B);
  CAPTURE(T);
  CAPTURE(D);
  CAPTURE(W);
  CAPTURE(causal);
  Tensor q = randn64({B, T, D}, seed), k = randn64({B, T, D}, seed + 1, 2.0),
         v = randn64({B, T, D}, seed + 2);
  Tensor wb = randn64({T, band_cols(W, causal)}, seed + 3, 2.0), g = randn64({B, T, D}, seed + 4);
  auto got = run_with_grads([&](const std::vector<Tensor>& x) { return local_fn(x, W, causal); },
                            {q, k, v, wb}, g);
  std::vector<double> gv = values(g);
  NaiveResult want = naive_aft(local_problem(q, k, v, wb, W, causal), &gv);
  check_near(got[0], want.y, 1e-10, "y");
  check_near(got[1], want.dq, 1e-10, "dq");
  check_near(got[2], want.dk, 1e-9, "dk");
  check_near(got[3], want.dv, 1e-10, "dv");
  check_near(got[4], want.dw, 1e-9, "dw");
}

// Band of a full [T, T] bias.
Tensor band_of(const Tensor& w, int64_t W, bool causal) {
  const int64_t T = w.size(0), nb = band_cols(W, causal);
  std::vector<double> wv = values(w), out(static_cast<size_t>(T * nb), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < nb; ++j) {
      int64_t tp = t + j - (W - 1);
      if (tp >= 0 && tp < T)
        out[static_cast<size_t>(t * nb + j)] = wv[static_cast<size_t>(t * T + tp)];
    }
  return from_vector<double>(out, {T, nb}).to(w.dtype());
}

}  // namespace

TEST_CASE("aft_local matches the naive formula in float64") {
  for (bool causal : {false, true}) {
    check_against_naive(2, 1, 3, 1, causal, 10);    // T = 1, window = 1
    check_against_naive(2, 37, 11, 1, causal, 20);  // window = 1: bias on the diagonal only
    check_against_naive(2, 37, 11, 5, causal, 30);
    check_against_naive(1, 300, 9, 40, causal, 40);  // T not a multiple of anything
    check_against_naive(2, 20, 5, 25, causal, 50);   // window > T
    check_against_naive(1, 30, 4, 30, causal, 60);   // window = T
  }
}

TEST_CASE("aft_local: |k|, |w| up to 80 stay finite and accurate in float32") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 2, T = 150, D = 9, W = 20;
    Tensor q = randn64({B, T, D}, 1), v = randn64({B, T, D}, 3), g = randn64({B, T, D}, 4);
    std::vector<double> gv = values(g);
    // (a) uniform in [-80, 80]; (b) the adversarial pattern: k = 80 at t0 = 70 and -80
    // elsewhere, w = -80 on every band cell of key t0 and 20 on all others. Then the exponents
    // are 0 at t0 and at most -60 elsewhere: the answer is v[t0] near t0. "Subtract max k and
    // max w separately" gets e^{80-80}·e^{-80-20} = e^{-100} -> 0 in float32 for the winner and
    // e^{-160} -> 0 for the rest: 0/0. The "(e^w - 1) correction" form cancels e^80 against
    // e^80.
    for (int pattern = 0; pattern < 2; ++pattern) {
      CAPTURE(pattern);
      const int64_t nb = band_cols(W, causal), t0 = 70;
      Tensor k, wb;
      if (pattern == 0) {
        k = uniform64({B, T, D}, 5, -80, 80);
        wb = uniform64({T, nb}, 6, -80, 80);
      } else {
        k = full({B, T, D}, -80.0, kFloat64);
        k.narrow(1, t0, 1).fill_(80.0);
        std::vector<double> w(static_cast<size_t>(T * nb), 20.0);
        for (int64_t t = 0; t < T; ++t) {
          int64_t j = t0 - t + W - 1;
          if (j >= 0 && j < nb) w[static_cast<size_t>(t * nb + j)] = -80.0;
        }
        wb = from_vector<double>(w, {T, nb});
      }
      std::vector<Tensor> in32 = {q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), wb.to(kFloat32)};
      auto got = run_with_grads(
          [&](const std::vector<Tensor>& x) { return local_fn(x, W, causal); }, in32, g);
      NaiveResult want =
          naive_aft(local_problem(in32[0], in32[1], in32[2], in32[3], W, causal), &gv);
      CHECK(max_rel_err(got[0], want.y) < 1e-5);
      CHECK(max_rel_err(got[1], want.dq) < 1e-5);
      if (pattern == 0) {
        CHECK(max_rel_err(got[2], want.dk) < 1e-4);
      } else {
        // Here the exact dk is ~e^{-60}: the key t0 that dominates every row has v[t0] = r[t]
        // for all t, so dk[t0] = Σ gr·a·(v[t0] - r[t]) = 0. The far part of dk is computed as
        // v·Σ gr·a - Σ gr·a·r (prefix/suffix sums cannot form v[t'] - r[t] per pair), which
        // leaves rounding of order eps·|v|·Σ|gr·a|. The bound that holds is relative to that
        // scale (|dk| <= 2 max|v| max|dv|), not to |dk| itself (see docs/aft.md).
        double scale = max_abs(values(in32[2])) * max_abs(want.dv);
        CHECK(max_abs_diff(values(got[2]), want.dk) <= 1e-4 * scale);
      }
      CHECK(max_rel_err(got[3], want.dv) < 1e-4);
      CHECK(max_rel_err(got[4], want.dw) < 1e-4);
      if (pattern == 1 && !causal) {  // rows that see t0 in their band or beyond it return v[t0]
        std::vector<double> yv = values(got[0]), vv = values(v), qv = values(q);
        for (int64_t t : {int64_t{0}, t0 - W + 1, t0, t0 + W - 1, T - 1}) {
          double want_t =
              vv[static_cast<size_t>(t0 * D)] / (1.0 + std::exp(-qv[static_cast<size_t>(t * D)]));
          CHECK(yv[static_cast<size_t>(t * D)] == doctest::Approx(want_t).epsilon(1e-5));
        }
      }
    }
  }
}

TEST_CASE("aft_local: float32 agrees with float64 at T = 4096 (kLongT)") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 1, T = kLongT, D = 6, W = 64;
    Tensor q = randn64({B, T, D}, 5), k = randn64({B, T, D}, 6, 3.0), v = randn64({B, T, D}, 7);
    Tensor wb = randn64({T, band_cols(W, causal)}, 8, 3.0), g = randn64({B, T, D}, 9);
    auto f = [&](const std::vector<Tensor>& x) { return local_fn(x, W, causal); };
    auto r64 = run_with_grads(f, {q, k, v, wb}, g);
    auto r32 =
        run_with_grads(f, {q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), wb.to(kFloat32)}, g);
    for (size_t i = 0; i < r64.size(); ++i) {
      CAPTURE(i);
      CHECK(max_rel_err(r32[i], r64[i]) < 1e-4);
    }
  }
}

TEST_CASE("aft_local: identities with aft_full and aft_simple") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 2, T = 33, D = 7;
    Tensor q = randn64({B, T, D}, 1), k = randn64({B, T, D}, 2), v = randn64({B, T, D}, 3);
    Tensor w = randn64({T, T}, 4);
    Tensor g = randn64({B, T, D}, 5);
    // window >= T: every pair is in the band, so aft_local is aft_full with the same w; the
    // gradient of the band is the gradient of w, cell by cell.
    for (int64_t W : {T, T + 5}) {
      Tensor wb = band_of(w, W, causal);
      auto loc = run_with_grads(
          [&](const std::vector<Tensor>& x) { return local_fn(x, W, causal); }, {q, k, v, wb}, g);
      auto ful = run_with_grads(
          [&](const std::vector<Tensor>& x) { return aft_full(x[0], x[1], x[2], x[3], causal); },
          {q, k, v, w}, g);
      for (int i = 0; i < 4; ++i)
        check_close(loc[i], ful[i], 1e-12, 1e-12, "window >= T vs aft_full");
      check_close(loc[4], band_of(ful[4], W, causal), 1e-12, 1e-12, "band gradient vs aft_full");
    }
    // w = 0: aft_simple, whatever the window.
    for (int64_t W : {int64_t{1}, int64_t{4}, T}) {
      Tensor wb = zeros({T, band_cols(W, causal)}, kFloat64);
      check_close(aft_local(q, k, v, wb, W, causal), aft_simple(q, k, v, causal), 1e-12, 1e-12,
                  "w = 0");
    }
  }
}

TEST_CASE("aft_local: gradcheck of q, k, v and the band") {
  for (bool causal : {false, true})
    for (int64_t W : {1, 3, 7}) {
      CAPTURE(causal);
      CAPTURE(W);
      check_gradcheck([&](const std::vector<Tensor>& x) { return local_fn(x, W, causal); },
                      {leaf({2, 6, 3}, 1), leaf({2, 6, 3}, 2, 2.0), leaf({2, 6, 3}, 3),
                       leaf({6, band_cols(W, causal)}, 4, 2.0)});
    }
}

TEST_CASE("aft_local: results are reproducible for a thread count") {
  const int64_t B = 3, T = 50, D = 20, W = 6;
  std::vector<Tensor> in = {randn64({B, T, D}, 1).to(kFloat32), randn64({B, T, D}, 2).to(kFloat32),
                            randn64({B, T, D}, 3).to(kFloat32),
                            randn64({T, 2 * W - 1}, 4).to(kFloat32)};
  Tensor g = randn64({B, T, D}, 5);
  auto f = [&](const std::vector<Tensor>& x) { return local_fn(x, W, false); };
  const int saved = num_threads();
  set_num_threads(3);
  auto a = run_with_grads(f, in, g), b = run_with_grads(f, in, g);
  set_num_threads(1);
  auto c = run_with_grads(f, in, g);
  set_num_threads(saved);
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    check_close(a[i], b[i], 0, 0, "same thread count: bitwise equal");
    // dw sums per-thread partial buffers: another thread count only reorders the sum.
    check_close(a[i], c[i], i == 4 ? 1e-5 : 0, i == 4 ? 1e-6 : 0, "1 vs 3 threads");
  }
}

TEST_CASE("aft_local: bad input") {
  Tensor a = zeros({2, 5, 4});
  check_error([&] { aft_local(a, a, a, zeros({5, 5}), 0, false); }, "window must be >= 1, got 0");
  check_error([&] { aft_local(a, a, a, zeros({5, 5}), -2, true); }, "window must be >= 1");
  check_error(
      [&] {
        aft_local(a, a, a, zeros({5, 4}), 3, false);
      },
      "w must be (the band [T, 2·window - 1]) [5, 5], got [5, 4]");
  check_error([&] { aft_local(a, a, a, zeros({5, 5}), 3, true); }, "[5, 3], got [5, 5]");
  check_error([&] { aft_local(a, a, a, zeros({4, 3}), 3, true); }, "got [4, 3]");
  check_error([&] { aft_local(a, a, a, zeros({5, 3}, kFloat64), 3, true); }, "dtypes differ");
  check_error([&] { aft_local(a, a, a, Tensor(), 3, true); }, "w is an undefined tensor");
  check_error([&] { aft_local(a, zeros({2, 5, 3}), a, zeros({5, 3}), 3, true); }, "one shape");
}
