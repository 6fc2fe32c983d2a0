// tests/test_aft_conv.cpp: aft_conv (ops/aft_conv.cpp) against the naive O((H·W)²·C) formula of
// tests/aft_naive.h in float64 (output and the gradients of q, k, v, w): one key per head and one
// per channel, heads = 1 and heads = C, s = 1 and s larger than the image, 1×1 images, C not a
// multiple of the vector width; |k|, |w| up to 80; the identity with aft_simple (w = 0);
// gradcheck; bad input.
#include "aft_naive.h"

using namespace aft;
using namespace aft::test;

namespace {

struct ConvCase {
  int64_t B, H, W, C, heads;
  bool key_per_head;
  int64_t s;
};

// The naive problem: pixels flattened to T = H·W, keys expanded to every channel of their head,
// bias of (p, p') = w[h, dy + r, dx + r] when p' = p + (dy, dx) is inside the s×s window.
NaiveAft conv_problem(const ConvCase& cc, const Tensor& q, const Tensor& k, const Tensor& v,
                      const Tensor& w) {
  NaiveAft p;
  p.B = cc.B, p.T = cc.H * cc.W, p.D = cc.C;
  p.q = values(q), p.v = values(v), p.w = values(w);
  std::vector<double> kv = values(k);
  const int64_t hc = cc.C / cc.heads, Kc = k.size(3);
  p.k.resize(p.q.size());
  for (int64_t i = 0; i < static_cast<int64_t>(p.k.size()); ++i) {
    int64_t pix = i / cc.C, c = i % cc.C;
    p.k[i] = kv[pix * Kc + (Kc == cc.C ? c : c / hc)];
  }
  const int64_t r = (cc.s - 1) / 2, Wd = cc.W, s = cc.s;
  p.widx = [=](int64_t t, int64_t tp, int64_t c) -> int64_t {
    int64_t dy = tp / Wd - t / Wd, dx = tp % Wd - t % Wd;
    if (std::abs(dy) > r || std::abs(dx) > r) return -1;
    return (c / hc) * s * s + (dy + r) * s + (dx + r);
  };
  return p;
}

// Per-channel key gradient summed to the layout of k.
std::vector<double> key_grad(const ConvCase& cc, const std::vector<double>& dkc, int64_t Kc) {
  std::vector<double> out(static_cast<size_t>(cc.B * cc.H * cc.W * Kc), 0.0);
  const int64_t hc = cc.C / cc.heads;
  for (int64_t i = 0; i < static_cast<int64_t>(dkc.size()); ++i) {
    int64_t pix = i / cc.C, c = i % cc.C;
    out[pix * Kc + (Kc == cc.C ? c : c / hc)] += dkc[i];
  }
  return out;
}

Tensor conv_fn(const std::vector<Tensor>& x, int64_t heads) {
  return aft_conv(x[0], x[1], x[2], x[3], heads);
}

std::vector<Tensor> conv_inputs(const ConvCase& cc, uint64_t seed, double kscale = 2.0,
                                double wscale = 2.0) {
  const int64_t Kc = cc.key_per_head ? cc.heads : cc.C;
  return {randn64({cc.B, cc.H, cc.W, cc.C}, seed),
          randn64({cc.B, cc.H, cc.W, Kc}, seed + 1, kscale),
          randn64({cc.B, cc.H, cc.W, cc.C}, seed + 2),
          randn64({cc.heads, cc.s, cc.s}, seed + 3, wscale)};
}

void check_against_naive(const ConvCase& cc, uint64_t seed) {
  CAPTURE(cc.B);
  CAPTURE(cc.H);
  CAPTURE(cc.W);
  CAPTURE(cc.C);
  CAPTURE(cc.heads);
  CAPTURE(cc.key_per_head);
  CAPTURE(cc.s);
  std::vector<Tensor> in = conv_inputs(cc, seed);
  Tensor g = randn64(in[0].shape(), seed + 4);
  auto got =
      run_with_grads([&](const std::vector<Tensor>& x) { return conv_fn(x, cc.heads); }, in, g);
  std::vector<double> gv = values(g);
  NaiveResult want = naive_aft(conv_problem(cc, in[0], in[1], in[2], in[3]), &gv);
  check_near(got[0], want.y, 1e-10, "y");
  check_near(got[1], want.dq, 1e-10, "dq");
  check_near(got[2], key_grad(cc, want.dk, in[1].size(3)), 1e-9, "dk");
  check_near(got[3], want.dv, 1e-10, "dv");
  check_near(got[4], want.dw, 1e-9, "dw");
}

}  // namespace

TEST_CASE("aft_conv matches the naive formula in float64") {
  uint64_t seed = 10;
  for (const ConvCase& cc : {ConvCase{2, 5, 6, 8, 2, true, 3},  // the paper's form: a key per head
                             ConvCase{1, 7, 4, 12, 3, false, 5},  // a key per channel
                             ConvCase{1, 4, 4, 5, 1, true, 3},    // heads = 1: one shared kernel
                             ConvCase{2, 3, 5, 6, 6, true, 3},    // heads = C: fully depthwise
                             ConvCase{1, 4, 5, 3, 1, true, 1},    // s = 1: bias on the pixel itself
                             ConvCase{1, 3, 4, 4, 2, true, 9},    // s larger than the image
                             ConvCase{2, 1, 1, 3, 1, true, 3},    // a 1×1 image
                             ConvCase{1, 6, 6, 9, 3, true, 3},  // C = 9: a partial vector, 3 heads
                             ConvCase{1, 9, 2, 20, 4, false, 7}})
    check_against_naive(cc, seed += 10);
}

TEST_CASE("aft_conv: |k|, |w| up to 80 stay finite and accurate in float32") {
  const ConvCase cc{2, 8, 7, 10, 2, true, 3};
  Tensor g = randn64({cc.B, cc.H, cc.W, cc.C}, 4);
  std::vector<double> gv = values(g);
  for (int pattern = 0; pattern < 2; ++pattern) {
    CAPTURE(pattern);
    std::vector<Tensor> in = conv_inputs(cc, 1);
    if (pattern == 0) {
      in[1] = uniform64(in[1].shape(), 5, -80, 80);
      in[3] = uniform64(in[3].shape(), 6, -80, 80);
    } else {  // k = 80 at one pixel, -80 elsewhere; w = -80 at the centre, 20 elsewhere
      in[1] = full(in[1].shape(), -80.0, kFloat64);
      in[1].narrow(1, 3, 1).narrow(2, 4, 1).fill_(80.0);
      in[3] = full(in[3].shape(), 20.0, kFloat64);
      in[3].narrow(1, 1, 1).narrow(2, 1, 1).fill_(-80.0);
    }
    std::vector<Tensor> in32;
    for (auto& t : in) in32.push_back(t.to(kFloat32));
    auto got =
        run_with_grads([&](const std::vector<Tensor>& x) { return conv_fn(x, cc.heads); }, in32, g);
    NaiveResult want = naive_aft(conv_problem(cc, in32[0], in32[1], in32[2], in32[3]), &gv);
    CHECK(max_rel_err(got[0], want.y) < 1e-5);
    CHECK(max_rel_err(got[1], want.dq) < 1e-5);
    CHECK(max_rel_err(got[3], want.dv) < 1e-4);
    std::vector<double> dk = key_grad(cc, want.dk, cc.heads);
    if (pattern == 0) {
      CHECK(max_rel_err(got[2], dk) < 1e-4);
      CHECK(max_rel_err(got[4], want.dw) < 1e-4);
    } else {
      // One key dominates every pixel, so the exact dk, dw are ~0 (v[p0] - r ≈ 0): the error
      // bound holds relative to max|v|·max|dv| (see test_aft_local.cpp and docs/aft.md).
      double scale = max_abs(values(in32[2])) * max_abs(want.dv);
      CHECK(max_abs_diff(values(got[2]), dk) <= 1e-4 * scale);
      CHECK(max_abs_diff(values(got[4]), want.dw) <= 1e-4 * scale);
    }
  }
}

TEST_CASE("aft_conv: float32 agrees with float64 on a 64×64 image (T = 4096 pixels)") {
  for (bool key_per_head : {true, false}) {
    CAPTURE(key_per_head);
    const ConvCase cc{1, 64, 64, 6, 2, key_per_head, 7};
    std::vector<Tensor> in = conv_inputs(cc, 21, 3.0, 3.0);
    Tensor g = randn64(in[0].shape(), 22);
    auto f = [&](const std::vector<Tensor>& x) { return conv_fn(x, cc.heads); };
    auto r64 = run_with_grads(f, in, g);
    std::vector<Tensor> in32;
    for (auto& t : in) in32.push_back(t.to(kFloat32));
    auto r32 = run_with_grads(f, in32, g);
    for (size_t i = 0; i < r64.size(); ++i) {
      CAPTURE(i);
      CHECK(max_rel_err(r32[i], r64[i]) < 1e-4);
    }
  }
}

TEST_CASE("aft_conv with w = 0 is aft_simple over the flattened image") {
  for (bool key_per_head : {true, false}) {
    CAPTURE(key_per_head);
    const ConvCase cc{2, 5, 3, 6, 3, key_per_head, 3};
    std::vector<Tensor> in = conv_inputs(cc, 7);
    in[3] = zeros(in[3].shape(), kFloat64);
    Tensor g = randn64(in[0].shape(), 8);
    auto a =
        run_with_grads([&](const std::vector<Tensor>& x) { return conv_fn(x, cc.heads); }, in, g);
    const int64_t T = cc.H * cc.W, hc = cc.C / cc.heads;
    // k broadcast over its head's channels: [B, H, W, heads] -> [B, H, W, heads, C/heads].
    auto kfull = [&](const Tensor& k) {
      return key_per_head
                 ? k.unsqueeze(4).expand({cc.B, cc.H, cc.W, cc.heads, hc}).reshape({cc.B, T, cc.C})
                 : k.reshape({cc.B, T, cc.C});
    };
    auto b = run_with_grads(
        [&](const std::vector<Tensor>& x) {
          return aft_simple(x[0].reshape({cc.B, T, cc.C}), kfull(x[1]),
                            x[2].reshape({cc.B, T, cc.C}), false)
              .reshape(x[0].shape());
        },
        {in[0], in[1], in[2]}, g);
    for (int i = 0; i < 4; ++i)
      check_close(a[i], b[i], 1e-12, 1e-12, "aft_conv(w = 0) vs aft_simple");
  }
}

TEST_CASE("aft_conv: gradcheck of q, k, v, w") {
  for (const ConvCase& cc : {ConvCase{2, 3, 4, 4, 2, true, 3}, ConvCase{1, 4, 3, 3, 3, false, 3},
                             ConvCase{1, 2, 3, 2, 1, true, 1}, ConvCase{1, 3, 2, 2, 1, true, 5}}) {
    CAPTURE(cc.heads);
    CAPTURE(cc.s);
    std::vector<Tensor> in = conv_inputs(cc, 3);
    for (auto& t : in) t = t.detach().requires_grad_();
    check_gradcheck([&](const std::vector<Tensor>& x) { return conv_fn(x, cc.heads); }, in);
  }
}

TEST_CASE("aft_conv: bad input") {
  Tensor q = zeros({2, 4, 5, 6}), kh = zeros({2, 4, 5, 2}), w = zeros({2, 3, 3});
  check_error([&] { aft_conv(q, kh, zeros({2, 4, 5, 7}), w, 2); }, "q and v must have one shape");
  check_error(
      [&] {
        aft_conv(zeros({4, 5, 6}), zeros({4, 5, 2}), zeros({4, 5, 6}), w, 2);
      },
      "image [B, H, W, C]");
  check_error([&] { aft_conv(q, kh, q, zeros({2, 4, 4}), 2); }, "s odd, got [2, 4, 4]");
  check_error([&] { aft_conv(q, kh, q, zeros({2, 3, 5}), 2); }, "got [2, 3, 5]");
  check_error([&] { aft_conv(q, kh, q, zeros({3, 3, 3}), 2); }, "heads = 2");
  check_error([&] { aft_conv(q, kh, q, zeros({3, 3}), 2); }, "w must be [heads, s, s]");
  check_error(
      [&] {
        aft_conv(q, zeros({2, 4, 5, 4}), q, zeros({4, 3, 3}), 4);
      },
      "heads (4) must be >= 1 and divide");
  check_error([&] { aft_conv(q, kh, q, w, 0); }, "heads (0)");
  check_error(
      [&] {
        aft_conv(q, zeros({2, 4, 5, 3}), q, w, 2);
      },
      "k must be [2, 4, 5, 2] (one key per head) or [2, 4, 5, 6]");
  check_error([&] { aft_conv(q, zeros({2, 4, 4, 2}), q, w, 2); }, "got [2, 4, 4, 2]");
  check_error([&] { aft_conv(q, kh, q, w.to(kFloat64), 2); }, "dtypes differ");
  check_error([&] { aft_conv(q, kh, q, Tensor(), 2); }, "w is an undefined tensor");
}
