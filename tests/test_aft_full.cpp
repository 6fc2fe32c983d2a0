// tests/test_aft_full.cpp: aft_full (ops/aft_full.cpp) against the naive O(T²·D) formula of
// tests/aft_naive.h in float64 (output and the gradients of q, k, v, w), causal and not, for T = 1
// and T across several tiles (not a multiple of any tile size); |k|, |w| up to 80 including the
// pattern where per-k and per-w max shifts give 0/0; float32 against float64 at T = 4096; the
// identity with aft_simple (w = 0); the factorised bias w = u·vᵀ through matmul; gradcheck;
// bad input.
#include "aft_naive.h"

using namespace aft;
using namespace aft::test;

namespace {

NaiveAft full_problem(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w,
                      bool causal) {
  NaiveAft p;
  p.B = q.size(0), p.T = q.size(1), p.D = q.size(2);
  p.q = values(q), p.k = values(k), p.v = values(v), p.w = values(w);
  if (causal) p.support = [](int64_t t, int64_t tp) { return tp <= t; };
  const int64_t T = p.T;
  p.widx = [T](int64_t t, int64_t tp, int64_t) { return t * T + tp; };
  return p;
}

Tensor full_fn(const std::vector<Tensor>& x, bool causal) {
  return aft_full(x[0], x[1], x[2], x[3], causal);
}

void check_against_naive(int64_t B, int64_t T, int64_t D, bool causal, uint64_t seed,
                         double wscale = 2.0) {
  CAPTURE(B);
  CAPTURE(T);
  CAPTURE(D);
  CAPTURE(causal);
  Tensor q = randn64({B, T, D}, seed), k = randn64({B, T, D}, seed + 1, 2.0),
         v = randn64({B, T, D}, seed + 2);
  Tensor w = randn64({T, T}, seed + 3, wscale), g = randn64({B, T, D}, seed + 4);
  auto got = run_with_grads([&](const std::vector<Tensor>& x) { return full_fn(x, causal); },
                            {q, k, v, w}, g);
  std::vector<double> gv = values(g);
  NaiveResult want = naive_aft(full_problem(q, k, v, w, causal), &gv);
  check_near(got[0], want.y, 1e-10, "y");
  check_near(got[1], want.dq, 1e-10, "dq");
  check_near(got[2], want.dk, 1e-9, "dk");
  check_near(got[3], want.dv, 1e-10, "dv");
  check_near(got[4], want.dw, 1e-9, "dw");
}

}  // namespace

TEST_CASE("aft_full matches the naive formula in float64") {
  for (bool causal : {false, true}) {
    check_against_naive(2, 1, 3, causal, 10);    // T = 1
    check_against_naive(2, 37, 11, causal, 20);  // one tile, D not a multiple of the vector width
    check_against_naive(1, 300, 9, causal, 30);  // several row and key tiles, ragged ends
    check_against_naive(3, 130, 1, causal, 40);  // D = 1, one key tile + 2 keys
  }
}

TEST_CASE("aft_full: |k|, |w| up to 80 stay finite and accurate in float32") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 2, T = 160, D = 9, t0 = 40;
    Tensor q = randn64({B, T, D}, 1), v = randn64({B, T, D}, 3), g = randn64({B, T, D}, 4);
    std::vector<double> gv = values(g);
    // (a) k, w uniform in [-80, 80]. (b) k = 80 at t0 and -80 elsewhere, w = -80 in column t0
    // and 20 elsewhere: the exponents are 0 at t0 and -60 elsewhere, so rows that see t0 return
    // v[t0]. Per-channel max of k (80) and per-row max of w (20) shift the winner to
    // e^0 · e^{-100} and every other key to e^{-160} · e^0: both 0 in float32, 0/0.
    // (c) as (b) with w = -80 in column t0 only for even rows: rows mix both regimes.
    for (int pattern = 0; pattern < 3; ++pattern) {
      CAPTURE(pattern);
      Tensor k, w;
      if (pattern == 0) {
        k = uniform64({B, T, D}, 5, -80, 80);
        w = uniform64({T, T}, 6, -80, 80);
      } else {
        k = full({B, T, D}, -80.0, kFloat64);
        k.narrow(1, t0, 1).fill_(80.0);
        std::vector<double> wv(static_cast<size_t>(T * T), 20.0);
        for (int64_t t = 0; t < T; ++t)
          if (pattern == 1 || t % 2 == 0) wv[static_cast<size_t>(t * T + t0)] = -80.0;
        w = from_vector<double>(wv, {T, T});
      }
      std::vector<Tensor> in32 = {q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), w.to(kFloat32)};
      auto got =
          run_with_grads([&](const std::vector<Tensor>& x) { return full_fn(x, causal); }, in32, g);
      NaiveResult want = naive_aft(full_problem(in32[0], in32[1], in32[2], in32[3], causal), &gv);
      CHECK(max_rel_err(got[0], want.y) < 1e-5);
      CHECK(max_rel_err(got[1], want.dq) < 1e-5);
      CHECK(max_rel_err(got[2], want.dk) < 1e-4);
      CHECK(max_rel_err(got[3], want.dv) < 1e-4);
      CHECK(max_rel_err(got[4], want.dw) < 1e-4);
      if (pattern == 1) {
        std::vector<double> yv = values(got[0]), vv = values(v), qv = values(q);
        for (int64_t t : {t0, t0 + 1, T - 1}) {
          double want_t =
              vv[static_cast<size_t>(t0 * D)] / (1.0 + std::exp(-qv[static_cast<size_t>(t * D)]));
          CHECK(yv[static_cast<size_t>(t * D)] == doctest::Approx(want_t).epsilon(1e-5));
        }
      }
    }
  }
}

TEST_CASE("aft_full: float32 agrees with float64 at T = 4096 (kLongT)") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 1, T = kLongT, D = 3;
    Tensor q = randn64({B, T, D}, 5), k = randn64({B, T, D}, 6, 3.0), v = randn64({B, T, D}, 7);
    // w = u·pᵀ with u, p [T, 8] (the paper's factorised bias; entries ~N(0, 8)): cheaper to
    // make than 16M Gaussian draws.
    Tensor w = matmul(randn64({T, 8}, 8), randn64({T, 8}, 10).t()), g = randn64({B, T, D}, 9);
    auto f = [&](const std::vector<Tensor>& x) { return full_fn(x, causal); };
    auto r64 = run_with_grads(f, {q, k, v, w}, g);
    auto r32 =
        run_with_grads(f, {q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), w.to(kFloat32)}, g);
    for (size_t i = 0; i < r64.size(); ++i) {
      CAPTURE(i);
      CHECK(max_rel_err(r32[i], r64[i]) < 1e-4);
    }
  }
}

TEST_CASE("aft_full with w = 0 is aft_simple") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 2, T = 150, D = 5;
    Tensor q = randn64({B, T, D}, 1), k = randn64({B, T, D}, 2, 3.0), v = randn64({B, T, D}, 3);
    Tensor g = randn64({B, T, D}, 4);
    auto a = run_with_grads([&](const std::vector<Tensor>& x) { return full_fn(x, causal); },
                            {q, k, v, zeros({T, T}, kFloat64)}, g);
    auto b = run_with_grads(
        [&](const std::vector<Tensor>& x) { return aft_simple(x[0], x[1], x[2], causal); },
        {q, k, v}, g);
    for (int i = 0; i < 4; ++i)
      check_close(a[i], b[i], 1e-12, 1e-12, "aft_full(w = 0) vs aft_simple");
  }
}

TEST_CASE("aft_full with a factorised bias w = u·vᵀ (matmul): forward and gradients of u, v") {
  // The paper's parameterisation (w[t, t'] = u[t]·p[t'], u, p [T, d']) is matmul + aft_full; the
  // gradient reaches u and p through matmul's backward.
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 2, T = 7, D = 3, Dp = 4;
    auto f = [&](const std::vector<Tensor>& x) {
      return aft_full(x[0], x[1], x[2], matmul(x[3], x[4].t()), causal);
    };
    check_gradcheck(f, {leaf({B, T, D}, 1), leaf({B, T, D}, 2), leaf({B, T, D}, 3),
                        leaf({T, Dp}, 4), leaf({T, Dp}, 5)});
    // Against the naive formula with the product written out here.
    Tensor q = randn64({B, T, D}, 6), k = randn64({B, T, D}, 7), v = randn64({B, T, D}, 8);
    Tensor u = randn64({T, Dp}, 9), p = randn64({T, Dp}, 10), g = randn64({B, T, D}, 11);
    std::vector<double> uv = values(u), pv = values(p), wv(static_cast<size_t>(T * T), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t tp = 0; tp < T; ++tp)
        for (int64_t j = 0; j < Dp; ++j)
          wv[static_cast<size_t>(t * T + tp)] += uv[t * Dp + j] * pv[tp * Dp + j];
    std::vector<double> gv = values(g);
    NaiveResult want =
        naive_aft(full_problem(q, k, v, from_vector<double>(wv, {T, T}), causal), &gv);
    auto got = run_with_grads(f, {q, k, v, u, p}, g);
    check_near(got[0], want.y, 1e-10, "y");
    // du[t] = Σ_t' dw[t, t'] p[t'],  dp[t'] = Σ_t dw[t, t'] u[t]
    std::vector<double> du(static_cast<size_t>(T * Dp), 0.0), dp = du;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t tp = 0; tp < T; ++tp)
        for (int64_t j = 0; j < Dp; ++j) {
          du[t * Dp + j] += want.dw[t * T + tp] * pv[tp * Dp + j];
          dp[tp * Dp + j] += want.dw[t * T + tp] * uv[t * Dp + j];
        }
    check_near(got[4], du, 1e-9, "du");
    check_near(got[5], dp, 1e-9, "dp");
  }
}

TEST_CASE("aft_full: gradcheck of q, k, v, w") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    check_gradcheck(
        [&](const std::vector<Tensor>& x) { return full_fn(x, causal); },
        {leaf({2, 6, 3}, 1), leaf({2, 6, 3}, 2, 2.0), leaf({2, 6, 3}, 3), leaf({6, 6}, 4, 2.0)});
    check_gradcheck([&](const std::vector<Tensor>& x) { return full_fn(x, causal); },
                    {leaf({1, 1, 2}, 5), leaf({1, 1, 2}, 6), leaf({1, 1, 2}, 7), leaf({1, 1}, 8)});
  }
}

TEST_CASE("aft_full: results do not depend on the thread count") {
  // Forward rows and backward key tiles are each owned by one task: no sum crosses threads.
  for (bool causal : {false, true}) {
    const int64_t B = 2, T = 200, D = 10;
    std::vector<Tensor> in = {randn64({B, T, D}, 1).to(kFloat32),
                              randn64({B, T, D}, 2).to(kFloat32),
                              randn64({B, T, D}, 3).to(kFloat32), randn64({T, T}, 4).to(kFloat32)};
    Tensor g = randn64({B, T, D}, 5);
    auto f = [&](const std::vector<Tensor>& x) { return full_fn(x, causal); };
    const int saved = num_threads();
    set_num_threads(3);
    auto a = run_with_grads(f, in, g);
    set_num_threads(1);
    auto c = run_with_grads(f, in, g);
    set_num_threads(saved);
    for (size_t i = 0; i < a.size(); ++i) check_close(a[i], c[i], 0, 0, "1 vs 3 threads");
  }
}

TEST_CASE(
    "aft_full, aft_local, aft_conv: empty sizes, non-contiguous inputs, partial requires_grad") {
  // Empty batch, sequence or channels: empty results and gradients, no crash.
  for (const Shape& s : {Shape{0, 3, 4}, Shape{2, 0, 4}, Shape{2, 3, 0}}) {
    Tensor x = zeros(s, kFloat32).requires_grad_(),
           w = zeros({s[1], s[1]}, kFloat32).requires_grad_();
    Tensor wb = zeros({s[1], 3}, kFloat32).requires_grad_();
    sum(aft_full(x, x, x, w, true)).backward();
    sum(aft_local(x, x, x, wb, 2, false)).backward();
    CHECK(x.grad().shape() == s);
    CHECK(w.grad().shape() == Shape{s[1], s[1]});
    CHECK(wb.grad().shape() == Shape{s[1], 3});
  }
  Tensor img = zeros({2, 3, 0, 4}, kFloat32).requires_grad_();
  sum(aft_conv(img, zeros({2, 3, 0, 2}), img, zeros({2, 3, 3}), 2)).backward();
  CHECK(img.grad().shape() == Shape{2, 3, 0, 4});
  // A transposed q and a strided w give the result of their contiguous copies.
  const int64_t B = 2, T = 9, D = 5;
  Tensor q = randn64({T, B, D}, 1).transpose(0, 1), k = randn64({B, T, D}, 2),
         v = randn64({B, T, D}, 3);
  Tensor w = randn64({T, 2 * T}, 4).slice(1, 0, 2 * T, 2);
  REQUIRE(!q.is_contiguous());
  REQUIRE(!w.is_contiguous());
  check_close(aft_full(q, k, v, w, false), aft_full(q.contiguous(), k, v, w.contiguous(), false), 0,
              0);
  // Only w, or only q, requiring grad: the same gradient as with all four tracked.
  Tensor g = randn64({B, T, D}, 5);
  auto all = run_with_grads([](const std::vector<Tensor>& x) { return full_fn(x, true); },
                            {q, k, v, w}, g);
  Tensor wl = w.contiguous().requires_grad_(), ql = q.contiguous().requires_grad_();
  aft_full(q, k, v, wl, true).backward(g);
  aft_full(ql, k, v, w, true).backward(g);
  check_close(wl.grad(), all[4], 1e-14, 1e-14);
  check_close(ql.grad(), all[1], 1e-14, 1e-14);
}

TEST_CASE("aft_full: bad input") {
  Tensor a = zeros({2, 5, 4});
  check_error(
      [&] {
        aft_full(a, a, a, zeros({5, 4}), false);
      },
      "aft_full: w must be [T, T] [5, 5], got [5, 4]");
  check_error([&] { aft_full(a, a, a, zeros({5}), true); }, "got [5]");
  check_error([&] { aft_full(a, a, a, zeros({2, 5, 5}), true); }, "got [2, 5, 5]");
  check_error([&] { aft_full(a, a, zeros({2, 4, 4}), zeros({5, 5}), true); }, "one shape");
  check_error([&] { aft_full(a, a, a, zeros({5, 5}, kFloat64), false); }, "dtypes differ");
  check_error([&] { aft_full(a, a, a, Tensor(), false); }, "w is an undefined tensor");
}
