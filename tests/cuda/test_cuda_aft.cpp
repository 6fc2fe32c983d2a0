// tests/cuda/test_cuda_aft.cpp: the CUDA kernels of the AFT operators (cuda/aft_tiles.cu, aft_full.cu,
// aft_local.cu, aft_simple.cu, aft_conv.cu, aft_bias.cu) against the CPU operators, forward and
// every gradient, causal and not, on fresh random inputs.
//
// Each check runs the op on the device in float32 and in float64 and compares with the CPU op
// in float64 on the same inputs (rounded to float32 first for the float32 run):
//   float32: normwise relative error max|a - b| / max|b| < 1e-4 for the output and every
//            gradient (and no inf or NaN: max_rel_err is inf then);
//   float64: every element within 1e-9 of the reference (relative, with a floor of 1e-3 of the
//            largest element: tests/aft_naive.h check_near).
// Sizes are the ones where tiles, chunks and scans go wrong: T = 1, odd T straddling tile and
// chunk boundaries, T = 1000 and T = 4097, D = 1 and D not a multiple of 32 (3, 33, 45); windows
// 1, 2, small, larger than a tile and larger than T; images narrower and wider than a chunk,
// kernels larger than the image. Inputs include |k| up to 80 and |w| up to 20, and the pattern
// where separate max shifts of k and w give 0/0 (k = 80 at the key where w = -80).
//
// In the EMULATE build the small cases run under every thread order of the emulator
// (for_each_order: forward, reverse, shuffled) and the results must be bit-identical across
// orders (no atomics, every sum in a fixed order). The T = 1000 cases run once (B = 1, small
// D); T = 4097 runs only in optimised builds without sanitizers (the Release emulator job),
// as kLongT does for the CPU tests. Skipped (exit 77) without a CUDA device.
#include <random>

#include "../aft_naive.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

namespace {

using In = std::vector<Tensor>;
using Fn = std::function<Tensor(const In&)>;

#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
constexpr bool kBig = true;  // T = 4097 cases
#else
constexpr bool kBig = false;
#endif

// y and the gradient of sum(y · g) for every input, all copied to the CPU.
std::vector<Tensor> run(const Fn& f, const In& inputs, const Tensor& g, Device dev, DType dt) {
  In in;
  for (const Tensor& x : inputs) in.push_back(x.to(dt).to(dev).detach().requires_grad_());
  Tensor y = f(in);
  REQUIRE(y.device() == dev);
  y.backward(g.to(dt).to(dev));
  std::vector<Tensor> out{y.detach().cpu()};
  for (const Tensor& x : in) {
    REQUIRE(x.grad().defined());
    CHECK(x.grad().device() == dev);
    out.push_back(x.grad().cpu());
  }
  return out;
}

std::string name_of(size_t i) { return i == 0 ? "y" : "gradient of input " + std::to_string(i - 1); }

// A float64 reference other than the CPU op: y and the gradient of every input, from inputs and g.
using Naive = std::function<std::vector<std::vector<double>>(const In&, const std::vector<double>&)>;

// The check of the file comment. `orders`: under every emulator thread order (else once).
// `far_dk`: inputs (q, k, v, ...) built so that dk and dw cancel (the adversarial pattern of
// aft_local and aft_conv, where one key dominates every row, v[t'] - r[t] ≈ 0 and the exact dk,
// dw are ~e^{-60}): dk and dw are then compared with a bound relative to max|v|·max|dv| instead
// of their own size (docs/aft.md, "Known limit"; the CPU tests check the CPU op the same way).
// `naive`: compare float32 only, with this reference (the extreme patterns, where the exact
// gradients are ~e^{-60} and the CPU op's float64 rounding noise, ~1e-16, would be the
// reference's largest part: tests/aft_naive.h evaluates them exactly).
void check_parity(const Fn& f, const In& in64, const std::string& what, bool orders = true, bool far_dk = false,
                  const Naive& naive = {}) {
  INFO(what);
  const Shape ys = f(in64).shape();
  Generator gen(99);
  const Tensor g = randn(ys, kFloat64, &gen);
  for (DType dt : {kFloat32, kFloat64}) {
    if (naive && dt == kFloat64) continue;
    INFO("dtype ", std::string(dtype_name(dt)));
    In rounded;
    for (const Tensor& x : in64) rounded.push_back(x.detach().to(dt).to(kFloat64));
    std::vector<std::vector<double>> ref;
    if (naive) {
      ref = naive(rounded, values(g));
    } else {
      for (const Tensor& t : run(f, rounded, g, kCPU, kFloat64)) ref.push_back(values(t));
    }
    std::vector<std::vector<double>> first;
    auto body = [&] {
      const std::vector<Tensor> got = run(f, rounded, g, Device::cuda(), dt);
      REQUIRE(got.size() == ref.size());
      for (size_t i = 0; i < got.size(); ++i) {
        if (far_dk && (i == 2 || i == 4)) {
          const double scale = max_abs(values(rounded[2])) * max_abs(ref[3]);
          const double err = max_abs_diff(values(got[i]), ref[i]);
          CHECK_MESSAGE(err <= (dt == kFloat32 ? 1e-4 : 1e-12) * scale, what, ": ", name_of(i), " error ", err,
                        ", scale ", scale);
        } else if (dt == kFloat32) {
          const double err = max_rel_err(got[i], ref[i]);
          CHECK_MESSAGE(err < 1e-4, what, ": ", name_of(i), ": relative error ", err);
        } else {
          check_near(values(got[i]), ref[i], 1e-9, what + ": " + name_of(i));
        }
      }
      if (first.empty()) {
        for (const Tensor& t : got) first.push_back(t.to_vector<double>());
      } else {
        for (size_t i = 0; i < got.size(); ++i)
          CHECK_MESSAGE(got[i].to_vector<double>() == first[i], what, ": ", name_of(i),
                        " differs between thread orders");
      }
    };
    if (orders) for_each_order(body);
    else body();
  }
}

Tensor normal(const Shape& s, uint64_t seed, double scale = 1.0) { return randn64(s, seed, scale); }

std::string dims(int64_t B, int64_t T, int64_t D) {
  return fmt::format("[{}, {}, {}]", B, T, D);  // (operator+ chains trip GCC 12's -Wrestrict)
}

// The naive formula (tests/aft_naive.h) of AFT-full and AFT-local: y, dq, dk, dv, dw.
Naive naive_of(int64_t W, bool causal) {  // W = 0: aft_full
  return [W, causal](const In& x, const std::vector<double>& g) {
    NaiveAft p;
    p.B = x[0].size(0), p.T = x[0].size(1), p.D = x[0].size(2);
    p.q = values(x[0]), p.k = values(x[1]), p.v = values(x[2]), p.w = values(x[3]);
    if (causal) p.support = [](int64_t t, int64_t tp) { return tp <= t; };
    const int64_t T = p.T, nb = x[3].size(1);
    if (W == 0) {
      p.widx = [T](int64_t t, int64_t tp, int64_t) { return t * T + tp; };
    } else {
      p.widx = [W, nb](int64_t t, int64_t tp, int64_t) -> int64_t {
        const int64_t j = tp - t + W - 1;
        return j >= 0 && j < nb ? t * nb + j : -1;
      };
    }
    NaiveResult r = naive_aft(p, &g);
    return std::vector<std::vector<double>>{r.y, r.dq, r.dk, r.dv, r.dw};
  };
}

// ---- aft_full

void full_case(int64_t B, int64_t T, int64_t D, bool causal, uint64_t seed, bool orders = true) {
  In in = {normal({B, T, D}, seed), normal({B, T, D}, seed + 1, 2.0), normal({B, T, D}, seed + 2),
           normal({T, T}, seed + 3, 2.0)};
  check_parity([causal](const In& x) { return aft_full(x[0], x[1], x[2], x[3], causal); }, in,
               std::string("aft_full ") + (causal ? "causal " : "") + dims(B, T, D), orders);
}

// |k| up to 80 with |w| up to 20 (pattern 0), and the 0/0 pattern of separate shifts (1): k = 80 at
// key t0, -80 elsewhere; w = -80 in column t0 and 20 elsewhere (rows that see t0 return v[t0]).
In extreme_inputs(int64_t B, int64_t T, int64_t D, const Shape& wshape, int pattern, uint64_t seed) {
  Tensor q = normal({B, T, D}, seed), v = normal({B, T, D}, seed + 1);
  if (pattern == 0)
    return {q, uniform64({B, T, D}, seed + 2, -80, 80), v, uniform64(wshape, seed + 3, -20, 20)};
  const int64_t t0 = T / 3;
  Tensor k = full({B, T, D}, -80.0, kFloat64);
  k.narrow(1, t0, 1).fill_(80.0);
  Tensor w = full(wshape, 20.0, kFloat64);
  return {q, k, v, w};
}

}  // namespace

TEST_CASE("aft_full on CUDA matches the CPU: odd sizes, causal and not") {
  for (bool causal : {false, true}) {
    full_case(2, 1, 3, causal, 10);
    full_case(2, 37, 5, causal, 20);
    full_case(1, 130, 33, causal, 30);
    full_case(2, 70, 1, causal, 40);
  }
}

TEST_CASE("aft_full on CUDA: |k| up to 80, |w| up to 20, and the 0/0 pattern of separate shifts") {
  for (bool causal : {false, true})
    for (int pattern = 0; pattern < 2; ++pattern) {
      const int64_t B = 2, T = 160, D = 9;
      In in = extreme_inputs(B, T, D, {T, T}, pattern, 50);
      if (pattern == 1) in[3].narrow(1, T / 3, 1).fill_(-80.0);  // column t0
      check_parity([causal](const In& x) { return aft_full(x[0], x[1], x[2], x[3], causal); }, in,
                   "aft_full extreme pattern " + std::to_string(pattern) + (causal ? " causal" : ""), true, false,
                   pattern == 1 ? naive_of(0, causal) : Naive());
    }
}

TEST_CASE("aft_full on CUDA: T = 1000 (and 4097 in optimised builds)") {
  for (bool causal : {false, true}) {
    full_case(1, 1000, 3, causal, 60, false);
    if (kBig) full_case(1, 4097, 2, causal, 70, false);
  }
}

namespace {

// ---- aft_local

void local_case(int64_t B, int64_t T, int64_t D, int64_t W, bool causal, uint64_t seed, bool orders = true) {
  const int64_t nb = causal ? W : 2 * W - 1;
  In in = {normal({B, T, D}, seed), normal({B, T, D}, seed + 1, 2.0), normal({B, T, D}, seed + 2),
           normal({T, nb}, seed + 3, 2.0)};
  check_parity([W, causal](const In& x) { return aft_local(x[0], x[1], x[2], x[3], W, causal); }, in,
               std::string("aft_local ") + (causal ? "causal " : "") + dims(B, T, D) + " window " + std::to_string(W),
               orders);
}

}  // namespace

TEST_CASE("aft_local on CUDA matches the CPU: windows from 1 to beyond T, odd sizes") {
  for (bool causal : {false, true}) {
    local_case(2, 1, 3, 1, causal, 10);
    local_case(2, 1, 3, 4, causal, 11);
    local_case(2, 37, 5, 1, causal, 20);
    local_case(2, 37, 5, 2, causal, 21);
    local_case(1, 130, 33, 5, causal, 30);
    local_case(1, 200, 3, 33, causal, 40);
    local_case(1, 200, 3, 70, causal, 41);
    local_case(2, 70, 1, 300, causal, 50);  // window > T: every pair is in the band
  }
}

TEST_CASE("aft_local on CUDA: |k| up to 80, |w| up to 20, and the 0/0 pattern") {
  for (bool causal : {false, true})
    for (int pattern = 0; pattern < 2; ++pattern) {
      const int64_t B = 2, T = 160, D = 9, W = 40, nb = causal ? W : 2 * W - 1;
      In in = extreme_inputs(B, T, D, {T, nb}, pattern, 80);
      if (pattern == 1) {  // w = -80 at every band cell of key t0
        std::vector<double> wv = values(in[3]);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t j = T / 3 - t + W - 1;
          if (j >= 0 && j < nb) wv[static_cast<size_t>(t * nb + j)] = -80.0;
        }
        in[3] = from_vector<double>(wv, {T, nb});
      }
      check_parity([W, causal](const In& x) { return aft_local(x[0], x[1], x[2], x[3], W, causal); }, in,
                   "aft_local extreme pattern " + std::to_string(pattern) + (causal ? " causal" : ""), true,
                   pattern == 1, pattern == 1 ? naive_of(W, causal) : Naive());
    }
}

TEST_CASE("aft_local on CUDA: T = 1000 (and 4097 in optimised builds)") {
  for (bool causal : {false, true}) {
    local_case(1, 1000, 3, 64, causal, 60, false);
    if (kBig) {
      local_case(1, 4097, 3, 32, causal, 70, false);
      local_case(1, 4097, 2, 300, causal, 71, false);
    }
  }
}

namespace {

// ---- aft_simple

void simple_case(int64_t B, int64_t T, int64_t D, bool causal, uint64_t seed, bool orders = true, double kscale = 2.0) {
  In in = {normal({B, T, D}, seed), normal({B, T, D}, seed + 1, kscale), normal({B, T, D}, seed + 2)};
  // T = 1: the exact dk is 0 and the causal dk (v·Σ gr·a - Σ gr·a·r, as on the CPU) is rounding
  // noise of order eps·|v|·|dv|: the scale-relative bound.
  check_parity([causal](const In& x) { return aft_simple(x[0], x[1], x[2], causal); }, in,
               std::string("aft_simple ") + (causal ? "causal " : "") + dims(B, T, D), orders, T == 1);
}

}  // namespace

TEST_CASE("aft_simple on CUDA matches the CPU: odd sizes, several chunks and parts") {
  for (bool causal : {false, true}) {
    simple_case(2, 1, 3, causal, 10);
    simple_case(2, 37, 5, causal, 20);
    simple_case(1, 130, 33, causal, 30);
    simple_case(2, 300, 45, causal, 40);  // 10 chunks of 32, 2 column-reduction parts
    simple_case(3, 33, 1, causal, 50);
    // |k| up to 80
    In in = {normal({2, 150, 9}, 60), uniform64({2, 150, 9}, 61, -80, 80), normal({2, 150, 9}, 62)};
    check_parity([causal](const In& x) { return aft_simple(x[0], x[1], x[2], causal); }, in,
                 std::string("aft_simple |k| <= 80") + (causal ? " causal" : ""));
  }
}

TEST_CASE("aft_simple on CUDA: T = 1000 (and 4097, 20000 in optimised builds)") {
  for (bool causal : {false, true}) {
    simple_case(1, 1000, 3, causal, 70, false);
    if (kBig) {
      simple_case(1, 4097, 3, causal, 80, false);
      simple_case(1, 20000, 2, causal, 90, false, 4.0);  // 64 parts (the cap), 625 chunks
    }
  }
}

namespace {

// ---- aft_conv

struct ConvCase {
  int64_t B, H, W, C, heads;
  bool key_per_head;
  int64_t s;
};

std::string conv_name(const ConvCase& c) {
  return "aft_conv [" + std::to_string(c.B) + ", " + std::to_string(c.H) + ", " + std::to_string(c.W) + ", " +
         std::to_string(c.C) + "] heads " + std::to_string(c.heads) + (c.key_per_head ? " (key per head)" : "") +
         " s " + std::to_string(c.s);
}

In conv_inputs(const ConvCase& c, uint64_t seed) {
  const int64_t Kc = c.key_per_head ? c.heads : c.C;
  return {normal({c.B, c.H, c.W, c.C}, seed), normal({c.B, c.H, c.W, Kc}, seed + 1, 2.0),
          normal({c.B, c.H, c.W, c.C}, seed + 2), normal({c.heads, c.s, c.s}, seed + 3, 2.0)};
}

Fn conv_fn(int64_t heads) {
  return [heads](const In& x) { return aft_conv(x[0], x[1], x[2], x[3], heads); };
}

// The naive formula of AFT-conv (as tests/test_aft_conv.cpp builds it): y, dq, dk (summed to k's
// layout), dv, dw.
Naive conv_naive(const ConvCase& cc) {
  return [cc](const In& x, const std::vector<double>& g) {
    NaiveAft p;
    p.B = cc.B, p.T = cc.H * cc.W, p.D = cc.C;
    p.q = values(x[0]), p.v = values(x[2]), p.w = values(x[3]);
    const std::vector<double> kv = values(x[1]);
    const int64_t hc = cc.C / cc.heads, Kc = x[1].size(3), r = (cc.s - 1) / 2, Wd = cc.W, s = cc.s;
    p.k.resize(p.q.size());
    for (size_t i = 0; i < p.k.size(); ++i) {
      const int64_t pix = static_cast<int64_t>(i) / cc.C, c = static_cast<int64_t>(i) % cc.C;
      p.k[i] = kv[static_cast<size_t>(pix * Kc + (Kc == cc.C ? c : c / hc))];
    }
    p.widx = [=](int64_t t, int64_t tp, int64_t c) -> int64_t {
      const int64_t dy = tp / Wd - t / Wd, dx = tp % Wd - t % Wd;
      if (std::abs(dy) > r || std::abs(dx) > r) return -1;
      return (c / hc) * s * s + (dy + r) * s + (dx + r);
    };
    NaiveResult res = naive_aft(p, &g);
    std::vector<double> dk(static_cast<size_t>(cc.B * cc.H * cc.W * Kc), 0.0);
    for (size_t i = 0; i < res.dk.size(); ++i) {
      const int64_t pix = static_cast<int64_t>(i) / cc.C, c = static_cast<int64_t>(i) % cc.C;
      dk[static_cast<size_t>(pix * Kc + (Kc == cc.C ? c : c / hc))] += res.dk[i];
    }
    return std::vector<std::vector<double>>{res.y, res.dq, dk, res.dv, res.dw};
  };
}

}  // namespace

TEST_CASE("aft_conv on CUDA matches the CPU: heads, keys per head or channel, kernels, image sizes") {
  uint64_t seed = 10;
  for (const ConvCase& c : {ConvCase{2, 5, 6, 8, 2, true, 3},    // the paper's form: a key per head
                            ConvCase{1, 7, 4, 12, 3, false, 5},  // a key per channel
                            ConvCase{1, 4, 4, 5, 1, true, 3},    // heads = 1
                            ConvCase{2, 3, 5, 6, 6, true, 3},    // heads = C: fully depthwise
                            ConvCase{1, 4, 5, 3, 1, true, 1},    // s = 1
                            ConvCase{1, 3, 4, 4, 2, true, 9},    // s larger than the image
                            ConvCase{1, 1, 1, 3, 1, true, 3},    // one pixel
                            ConvCase{1, 6, 37, 5, 5, true, 3},   // rows longer than two chunks
                            ConvCase{1, 9, 20, 33, 3, false, 7},  // C > 32, s = 7, chunk boundaries
                            ConvCase{2, 14, 14, 4, 2, true, 7}}) {  // the bench's small image
    check_parity(conv_fn(c.heads), conv_inputs(c, seed), conv_name(c));
    seed += 10;
  }
}

TEST_CASE("aft_conv on CUDA: |k| up to 80, |w| up to 20, and the window-dominant pattern") {
  const ConvCase c{2, 8, 9, 6, 2, true, 3};
  for (int pattern = 0; pattern < 2; ++pattern) {
    In in = conv_inputs(c, 200);
    const int64_t y0 = 3, x0 = 4;
    if (pattern == 0) {
      in[1] = uniform64(in[1].shape(), 201, -80, 80);
      in[3] = uniform64(in[3].shape(), 202, -20, 20);
    } else {
      // k = 80 at pixel (y0, x0), -80 elsewhere; w = -80 at every offset, so pixels whose window
      // holds (y0, x0) see it at exponent 0 and all other keys at -160 or -60: the window holds
      // the dominant key with a very negative w (the (e^w - 1) form cancels e^80 here).
      in[1] = full(in[1].shape(), -80.0, kFloat64);
      in[1].narrow(1, y0, 1).narrow(2, x0, 1).fill_(80.0);
      in[3] = full(in[3].shape(), -80.0, kFloat64);
    }
    check_parity(conv_fn(c.heads), in, "aft_conv extreme pattern " + std::to_string(pattern), true, pattern == 1,
                 pattern == 1 ? conv_naive(c) : Naive());
  }
}

TEST_CASE("aft_conv on CUDA: larger images (56 × 56 with s = 7 in optimised builds)") {
  check_parity(conv_fn(2), conv_inputs({1, 20, 45, 4, 2, true, 5}, 300), "aft_conv 20 × 45", false);
  if (kBig) check_parity(conv_fn(2), conv_inputs({1, 56, 56, 2, 2, true, 7}, 310), "aft_conv 56 × 56", false);
}
