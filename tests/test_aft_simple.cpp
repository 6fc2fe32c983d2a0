// tests/test_aft_simple.cpp: aft_simple (ops/aft_simple.cpp) against the naive O(T²·D) formula of
// tests/aft_naive.h in float64 (outputs and every gradient), causal and not; T = 1 and odd sizes;
// float32 against float64 at T = 4096; extreme keys (|k| = 80); gradcheck; non-contiguous and
// empty inputs; bad input.
#include "aft_naive.h"

using namespace aft;
using namespace aft::test;

namespace {

NaiveAft simple_problem(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  NaiveAft p;
  p.B = q.size(0), p.T = q.size(1), p.D = q.size(2);
  p.q = values(q), p.k = values(k), p.v = values(v);
  if (causal) p.support = [](int64_t t, int64_t tp) { return tp <= t; };
  return p;
}

Tensor simple_fn(const std::vector<Tensor>& x, bool causal) {
  return aft_simple(x[0], x[1], x[2], causal);
}

// Output and all three gradients of aft_simple against the naive reference, in float64.
void check_against_naive(int64_t B, int64_t T, int64_t D, bool causal, uint64_t seed,
                         double kscale = 1.0) {
  CAPTURE(B);
  CAPTURE(T);
  CAPTURE(D);
  CAPTURE(causal);
  Tensor q = randn64({B, T, D}, seed), k = randn64({B, T, D}, seed + 1, kscale),
         v = randn64({B, T, D}, seed + 2);
  Tensor g = randn64({B, T, D}, seed + 3);
  auto got = run_with_grads([&](const std::vector<Tensor>& x) { return simple_fn(x, causal); },
                            {q, k, v}, g);
  std::vector<double> gv = values(g);
  NaiveResult want = naive_aft(simple_problem(q, k, v, causal), &gv);
  check_near(got[0], want.y, 1e-10, "y");
  check_near(got[1], want.dq, 1e-10, "dq");
  check_near(got[2], want.dk, 1e-9, "dk");
  check_near(got[3], want.dv, 1e-10, "dv");
}

}  // namespace

TEST_CASE("aft_simple matches the naive formula in float64") {
  for (bool causal : {false, true}) {
    check_against_naive(2, 1, 3, causal, 10);    // T = 1
    check_against_naive(2, 37, 11, causal, 20);  // D not a multiple of 8 or 4
    check_against_naive(1, 300, 9, causal, 30);
    check_against_naive(3, 5, 1, causal, 40);  // D = 1
  }
}

TEST_CASE("aft_simple: keys up to |k| = 80 stay finite and accurate in float32") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 2, T = 200, D = 10;
    Tensor q = randn64({B, T, D}, 1), k = uniform64({B, T, D}, 2, -80, 80),
           v = randn64({B, T, D}, 3);
    Tensor g = randn64({B, T, D}, 4);
    std::vector<double> gv = values(g);
    NaiveResult want = naive_aft(simple_problem(q, k, v, causal), &gv);
    auto got = run_with_grads([&](const std::vector<Tensor>& x) { return simple_fn(x, causal); },
                              {q.to(kFloat32), k.to(kFloat32), v.to(kFloat32)}, g);
    // The float32 inputs are the float64 ones rounded; the reference uses the rounded values.
    NaiveResult want32 =
        naive_aft(simple_problem(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), causal), &gv);
    CHECK(max_rel_err(got[0], want32.y) < 1e-5);
    CHECK(max_rel_err(got[1], want32.dq) < 1e-5);
    CHECK(max_rel_err(got[2], want32.dk) < 1e-4);
    CHECK(max_rel_err(got[3], want32.dv) < 1e-4);
    // One key far above the others: e^{80 - (-80)} would overflow without the running maximum.
    Tensor k2 = full({1, 8, 1}, -80.0, kFloat32);
    Tensor v2 = arange(0, 8, 1, kFloat32).reshape({1, 8, 1});
    Tensor q2 = full({1, 8, 1}, 30.0, kFloat32);  // sigmoid(30) = 1 in float32
    k2.narrow(1, 3, 1).fill_(80.0);
    Tensor y2 = aft_simple(q2, k2, v2, causal);
    std::vector<double> yv = values(y2);
    for (int64_t t = 0; t < 8; ++t) {
      double want_t = causal ? (t < 3 ? t / 2.0 : 3.0) : 3.0;  // mean of 0..t while all keys equal
      CHECK(yv[t] == doctest::Approx(want_t).epsilon(1e-6));
    }
  }
}

TEST_CASE("aft_simple: float32 agrees with float64 at T = 4096 (kLongT)") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const int64_t B = 1, T = kLongT, D = 12;
    Tensor q = randn64({B, T, D}, 5), k = randn64({B, T, D}, 6, 3.0), v = randn64({B, T, D}, 7);
    Tensor g = randn64({B, T, D}, 8);
    auto f = [&](const std::vector<Tensor>& x) { return simple_fn(x, causal); };
    auto r64 = run_with_grads(f, {q, k, v}, g);
    auto r32 = run_with_grads(f, {q.to(kFloat32), k.to(kFloat32), v.to(kFloat32)}, g);
    for (size_t i = 0; i < r64.size(); ++i) {
      CAPTURE(i);
      CHECK(max_rel_err(r32[i], r64[i]) < 1e-4);
    }
  }
}

TEST_CASE("aft_simple: gradcheck of q, k, v") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    check_gradcheck([&](const std::vector<Tensor>& x) { return simple_fn(x, causal); },
                    {leaf({2, 5, 3}, 1), leaf({2, 5, 3}, 2, 2.0), leaf({2, 5, 3}, 3)});
  }
}

TEST_CASE("aft_simple: non-contiguous inputs, one input requiring grad, empty tensors") {
  Tensor q = randn64({4, 2, 6}, 1).transpose(0, 1), k = randn64({2, 4, 6}, 2),
         v = randn64({2, 4, 12}, 3);
  Tensor vs = v.slice(2, 0, 12, 2);
  REQUIRE(!q.is_contiguous());
  REQUIRE(!vs.is_contiguous());
  for (bool causal : {false, true}) {
    check_close(aft_simple(q, k, vs, causal),
                aft_simple(q.contiguous(), k, vs.contiguous(), causal), 0, 0);
    // Only v requires grad: its gradient matches the one computed with all three tracked.
    Tensor vl = vs.contiguous().requires_grad_();
    aft_simple(q, k, vl, causal).backward(ones({2, 4, 6}, kFloat64));
    auto all = run_with_grads([&](const std::vector<Tensor>& x) { return simple_fn(x, causal); },
                              {q.contiguous(), k, vs.contiguous()}, ones({2, 4, 6}, kFloat64));
    check_close(vl.grad(), all[3], 1e-14, 1e-14);
  }
  for (const Shape& s : {Shape{0, 3, 4}, Shape{2, 0, 4}, Shape{2, 3, 0}}) {
    Tensor e = zeros(s, kFloat32).requires_grad_();
    Tensor y = aft_simple(e, e, e, true);
    CHECK(y.shape() == s);
    sum(y).backward();
    CHECK(e.grad().shape() == s);
  }
}

TEST_CASE("aft_simple: bad input") {
  Tensor a = zeros({2, 3, 4}), b = zeros({2, 3, 5});
  check_error([&] { aft_simple(a, a, b, false); }, "q, k, v must have one shape");
  check_error([&] { aft_simple(a, b, a, true); }, "[2, 3, 5]");
  check_error(
      [&] {
        aft_simple(zeros({3, 4}), zeros({3, 4}), zeros({3, 4}), false);
      },
      "q must be [B, T, D]");
  check_error([&] { aft_simple(a, a.to(kFloat64), a, false); }, "dtypes differ");
  check_error([&] { aft_simple(a, a, zeros({2, 3, 4}, kInt64), false); }, "float32 or float64");
  check_error([&] { aft_simple(a, Tensor(), a, false); }, "undefined");
}
