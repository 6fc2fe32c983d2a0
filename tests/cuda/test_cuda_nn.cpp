// tests/cuda/test_cuda_nn.cpp: the CUDA kernels of the fused NN ops and the index ops
// (cuda/softmax.cu, layer_norm.cu, cross_entropy.cu, nn_elementwise.cu, indexing.cu) against
// the CPU ops, forward and backward, on fresh random inputs at the sizes where row kernels go
// wrong: rows of 1, 31, 33, 1000 and 4097 elements (one warp per row up to 1024, one block
// above), D not a multiple of 32, a single row (T = 1), many rows (several partial-sum blocks
// of layer_norm's dw/db), non-contiguous views; float32 and float64. Also: dropout draws the
// CPU's mask from the same generator state, repeated indices accumulate exactly as on the CPU
// (same order, same bits), bad indices and targets raise the CPU's error, and a small training
// step computes everything on the device.
//
// In the EMULATE build every check runs under the emulator's forward, reverse and shuffled
// thread orders. float32 tolerances (1e-5 relative) leave room for a GPU's expf and fused
// multiply-adds: the kernels use no fast-math intrinsics. Skipped (exit 77) without a device.
#include <random>

#include "../helpers.h"


using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

namespace {

using In = std::vector<Tensor>;
using Fn = std::function<Tensor(const In&)>;


double rtol_of(DType dt) { return dt == kFloat32 ? 1e-5 : 1e-11; }
double atol_of(DType dt) { return dt == kFloat32 ? 1e-6 : 1e-13; }

// N(0, 1)·scale values, a leaf requiring grad unless grad = false.
Tensor rnd(const Shape& shape, DType dt, uint64_t seed, double scale = 1.0, bool grad = true) {
  Generator g(seed);
  Tensor t = mul(randn(shape, dt, &g), scale).detach();
  if (grad) t.requires_grad_();
  return t;
}

std::vector<int64_t> random_ints(int64_t n, int64_t lo, int64_t hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> u(lo, hi - 1);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

// f on the CPU inputs and on device copies of them: the outputs, and the gradients of
// sum(f(x) · proj) of every input that requires grad, must agree (and stay on the device).
// Returns the device gradients of the last order run.
In check_parity(const Fn& f, const In& in, double rtol, double atol, const std::string& what) {
  In last;
  INFO(what);
  for_each_order([&] {
    In cin, din;
    for (const Tensor& t : in) {
      Tensor c = t.detach(), d = t.detach().cuda();
      if (t.requires_grad()) {
        c.requires_grad_();
        d.requires_grad_();
      }
      cin.push_back(c);
      din.push_back(d);
    }
    Tensor yc = f(cin), yd = f(din);
    REQUIRE(yd.is_cuda());
    check_close(yd.cpu(), yc, rtol, atol, (what + ": forward").c_str());
    last.clear();
    if (!yc.requires_grad()) return;
    Generator g(17);
    Tensor proj = randn(yc.shape(), yc.dtype(), &g);
    sum(mul(yc, proj)).backward();
    sum(mul(yd, proj.cuda())).backward();
    for (size_t i = 0; i < in.size(); ++i) {
      last.push_back(din[i].grad());
      if (!in[i].requires_grad()) continue;
      REQUIRE_MESSAGE(din[i].grad().defined(), what, ": no gradient of input ", i);
      CHECK(din[i].grad().is_cuda());
      check_close(din[i].grad().cpu(), cin[i].grad(), rtol, atol,
                  (what + ": gradient of input " + std::to_string(i)).c_str());
    }
  });
  return last;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The CPU and the device raise the same message (which contains `needle`).
void check_same_error(const std::function<void(Device)>& f, const std::string& needle) {
  const std::string c = error_of([&] { f(kCPU); }), d = error_of([&] { f(Device::cuda()); });
  CHECK_MESSAGE(c.find(needle) != std::string::npos, c);
  CHECK_MESSAGE(d.find(needle) != std::string::npos, d);
  // The device message may add a location after the CPU's text; the CPU's text comes first.
  CHECK_MESSAGE(d.find(c.substr(0, c.find('\n'))) != std::string::npos, "cpu: ", c, "\ncuda: ", d);
}

const int64_t kLengths[] = {1, 31, 33, 1000, 4097};

}  // namespace

TEST_CASE("softmax and log_softmax: every row length, last and inner dims, views") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    for (int64_t n : kLengths) {
      CAPTURE(n);
      const int64_t rows = n > 1024 ? 2 : 5;
      for (bool log : {false, true}) {
        auto sm = [log](const Tensor& x, int64_t d) { return log ? log_softmax(x, d) : softmax(x, d); };
        const std::string name = std::string(log ? "log_softmax" : "softmax") + " n=" + std::to_string(n);
        // last dim (row kernel); scale 4 so the max shift matters
        check_parity([&](const In& x) { return sm(x[0], -1); }, {rnd({rows, n}, dt, 1 + n, 4.0)}, rtol_of(dt),
                     atol_of(dt), name + " dim -1");
        // inner dim: lanes (o, i), N = n elements spaced I = 3 apart
        check_parity([&](const In& x) { return sm(x[0], 1); }, {rnd({2, n, 3}, dt, 2 + n, 4.0)}, rtol_of(dt),
                     atol_of(dt), name + " dim 1 of 3");
      }
    }
    // A non-contiguous view, dim 0 of a 2-d tensor, a 1-d tensor and a 0-d tensor.
    check_parity([](const In& x) { return softmax(x[0].transpose(0, 1), -1); }, {rnd({33, 6}, dt, 3)}, rtol_of(dt),
                 atol_of(dt), "softmax of a transpose");
    check_parity([](const In& x) { return log_softmax(x[0].slice(1, 1, 40, 2), 0); }, {rnd({7, 41}, dt, 4)},
                 rtol_of(dt), atol_of(dt), "log_softmax of a strided slice, dim 0");
    check_parity([](const In& x) { return log_softmax(x[0], 0); }, {rnd({37}, dt, 5)}, rtol_of(dt), atol_of(dt),
                 "log_softmax 1-d");
    check_parity([](const In& x) { return softmax(x[0], 0); }, {rnd({}, dt, 6)}, rtol_of(dt), atol_of(dt),
                 "softmax 0-d");
  }
}

TEST_CASE("softmax: infinities and NaN give what the CPU gives") {
  const double inf = INFINITY, nan = NAN;
  // rows: all -inf; -inf and finite; +inf; NaN; large values (overflow without the shift)
  std::vector<double> v = {-inf, -inf, -inf, -inf, -inf, 1, 2, -inf, 1, inf, 2, 3,
                           1, nan, 2, 3, 1000, 999, -1000, 1000};
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = from_vector<double>(v, {5, 4}).to(dt);
    for (bool log : {false, true}) {
      for (int64_t d : {1, 0}) {
        Tensor xd = d == 1 ? x : x.t().contiguous();  // dim 0 runs the lane kernel
        Tensor yc = log ? log_softmax(xd, 1 - d) : softmax(xd, 1 - d);
        for_each_order([&] {
          Tensor yg = log ? log_softmax(xd.cuda(), 1 - d) : softmax(xd.cuda(), 1 - d);
          check_close(yg.cpu(), yc, rtol_of(dt), atol_of(dt), "special values");
        });
      }
    }
  }
}

TEST_CASE("layer_norm: every row length, one row, many rows, affine or not, views") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    for (int64_t D : kLengths) {
      CAPTURE(D);
      const int64_t R = D > 1024 ? 3 : 6;
      const std::string name = "layer_norm D=" + std::to_string(D);
      // offset 3 so the mean matters; T = 1 rows of a [2, 1, D] tensor
      check_parity([](const In& x) { return layer_norm(add(x[0], 3.0), x[1], x[2], 1e-5); },
                   {rnd({R, D}, dt, 10 + D), rnd({D}, dt, 11 + D), rnd({D}, dt, 12 + D)}, rtol_of(dt), atol_of(dt),
                   name + " affine");
      check_parity([](const In& x) { return layer_norm(x[0], Tensor(), Tensor(), 1e-5); }, {rnd({2, 1, D}, dt, 13 + D)},
                   rtol_of(dt), atol_of(dt), name + " plain, T = 1");
    }
    // Many rows: dw/db come from several partial-sum blocks (4 parts of 25 rows, 10 of 30).
    check_parity([](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); },
                 {rnd({4, 25, 33}, dt, 20), rnd({33}, dt, 21), rnd({33}, dt, 22)}, rtol_of(dt), atol_of(dt),
                 "layer_norm 100 rows");
    check_parity([](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); },
                 {rnd({300, 5}, dt, 23), rnd({5}, dt, 24), rnd({5}, dt, 25)}, rtol_of(dt), atol_of(dt),
                 "layer_norm 300 rows");
    // Weight only, bias only, x without grad (dw/db only), a non-contiguous x.
    check_parity([](const In& x) { return layer_norm(x[0], x[1], Tensor(), 1e-3); },
                 {rnd({9, 40}, dt, 26), rnd({40}, dt, 27)}, rtol_of(dt), atol_of(dt), "layer_norm weight only");
    check_parity([](const In& x) { return layer_norm(x[0], Tensor(), x[1], 1e-5); },
                 {rnd({9, 40}, dt, 28), rnd({40}, dt, 29)}, rtol_of(dt), atol_of(dt), "layer_norm bias only");
    check_parity([](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); },
                 {rnd({70, 7}, dt, 30, 1.0, false), rnd({7}, dt, 31), rnd({7}, dt, 32)}, rtol_of(dt), atol_of(dt),
                 "layer_norm dw/db only");
    check_parity([](const In& x) { return layer_norm(x[0].transpose(0, 1), x[1], x[2], 1e-5); },
                 {rnd({35, 4}, dt, 33), rnd({35}, dt, 34), rnd({35}, dt, 35)}, rtol_of(dt), atol_of(dt),
                 "layer_norm of a transpose");
    // D = 1: the variance is 0, y = bias.
    check_parity([](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); },
                 {rnd({3, 1}, dt, 36), rnd({1}, dt, 37), rnd({1}, dt, 38)}, rtol_of(dt), atol_of(dt),
                 "layer_norm D = 1");
  }
}

TEST_CASE("layer_norm: dw and db have the same bits under every thread order") {
  Tensor x = rnd({150, 45}, kFloat32, 40), w = rnd({45}, kFloat32, 41), b = rnd({45}, kFloat32, 42);
  Tensor g = rnd({150, 45}, kFloat32, 43, 1.0, false).cuda();
  std::vector<std::vector<float>> seen;
  for_each_order([&] {
    for (int rep = 0; rep < 2; ++rep) {
      Tensor xd = x.detach().cuda().requires_grad_(), wd = w.detach().cuda().requires_grad_(),
             bd = b.detach().cuda().requires_grad_();
      sum(mul(layer_norm(xd, wd, bd), g)).backward();
      std::vector<float> v = cat({wd.grad(), bd.grad(), xd.grad().flatten()}, 0).cpu().to_vector<float>();
      seen.push_back(v);
    }
  });
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] == seen[0]);
}

TEST_CASE("cross_entropy: every class count, reductions, ignore_index, label smoothing") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    for (int64_t C : kLengths) {
      CAPTURE(C);
      const int64_t N = C > 1024 ? 3 : 7;
      std::vector<int64_t> t = random_ints(N, 0, C, 50 + static_cast<uint64_t>(C));
      if (N > 2) t[1] = -100;  // ignored
      const std::pair<Reduction, double> variants[] = {
          {Reduction::Mean, 0.0}, {Reduction::Mean, 0.1}, {Reduction::Sum, 0.1}, {Reduction::None, 0.0}};
      for (const auto& v : variants) {
        const Reduction red = v.first;
        const double e = v.second;
        const std::string name = "cross_entropy C=" + std::to_string(C) + " reduction " +
                                 std::to_string(static_cast<int>(red)) + " smoothing " + std::to_string(e);
        check_parity(
            [&](const In& x) { return cross_entropy(x[0], from_vector<int64_t>(t).to(x[0].device()), -100, e, red); },
            {rnd({N, C}, dt, 60 + static_cast<uint64_t>(C), 3.0)}, rtol_of(dt), atol_of(dt), name);
      }
    }
    // One row (T = 1), a transposed view of the logits, an ignore_index inside [0, C).
    check_parity([](const In& x) { return cross_entropy(x[0], from_vector<int64_t>({2}).to(x[0].device())); },
                 {rnd({1, 33}, dt, 70)}, rtol_of(dt), atol_of(dt), "cross_entropy one row");
    check_parity(
        [](const In& x) {
          return cross_entropy(x[0].t(), from_vector<int64_t>({0, 4, 4, 1, 2}).to(x[0].device()), 4, 0.3);
        },
        {rnd({6, 5}, dt, 71)}, rtol_of(dt), atol_of(dt), "cross_entropy of a transpose, ignore_index 4");
    // Every row ignored: Mean is NaN on both devices, and its gradient 0.
    check_parity(
        [](const In& x) { return cross_entropy(x[0], from_vector<int64_t>({-100, -100}).to(x[0].device())); },
        {rnd({2, 3}, dt, 72)}, rtol_of(dt), atol_of(dt), "cross_entropy all ignored");
  }
}

TEST_CASE("cross_entropy: a bad target is reported as on the CPU, never read") {
  Tensor x = rnd({4, 5}, kFloat32, 80, 1.0, false);
  check_same_error([&](Device d) { cross_entropy(x.to(d), from_vector<int64_t>({1, 5, 0, -3}).to(d)); },
                   "target 5 of row 1 is out of range [0, 5)");
  check_same_error([&](Device d) { cross_entropy(x.to(d), from_vector<int64_t>({1, 2, -3, 7}).to(d), -100, 0.0,
                                                 Reduction::None); },
                   "target -3 of row 2");
}

TEST_CASE("sigmoid_gate: same shapes, broadcasting, views, one input differentiated") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    const Fn gate = [](const In& x) { return sigmoid_gate(x[0], x[1]); };
    check_parity(gate, {rnd({2, 33, 5}, dt, 90, 3.0), rnd({2, 33, 5}, dt, 91)}, rtol_of(dt), atol_of(dt), "gate");
    check_parity(gate, {rnd({3, 1}, dt, 92, 3.0), rnd({4}, dt, 93)}, rtol_of(dt), atol_of(dt), "gate broadcast");
    check_parity(gate, {rnd({1, 4097}, dt, 94, 3.0), rnd({3, 1}, dt, 95)}, rtol_of(dt), atol_of(dt),
                 "gate broadcast both ways");
    check_parity([](const In& x) { return sigmoid_gate(x[0].transpose(0, 2), x[1]); },
                 {rnd({5, 3, 4}, dt, 96, 3.0), rnd({4, 3, 5}, dt, 97)}, rtol_of(dt), atol_of(dt), "gate of a view");
    check_parity(gate, {rnd({7, 9}, dt, 98, 3.0), rnd({7, 9}, dt, 99, 1.0, false)}, rtol_of(dt), atol_of(dt),
                 "gate dq only");
    check_parity(gate, {rnd({7, 9}, dt, 100, 3.0, false), rnd({9}, dt, 101)}, rtol_of(dt), atol_of(dt),
                 "gate dx only");
    // |q| large: the two-branch sigmoid neither overflows nor loses the tails.
    check_parity(gate, {rnd({64}, dt, 102, 60.0), rnd({64}, dt, 103)}, rtol_of(dt), atol_of(dt), "gate large q");
  }
}

TEST_CASE("dropout: the CUDA mask is the CPU mask of the same generator state") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t n : {1, 3, 4, 5, 1001, 4097}) {
      for (double p : {0.3, 0.9}) {
        INFO("dtype ", std::string(dtype_name(dt)));
        CAPTURE(n);
        CAPTURE(p);
        Tensor x = rnd({n}, dt, 110 + static_cast<uint64_t>(n));
        for_each_order([&] {
          Generator gc(7), gd(7);
          Tensor xc = x.detach().requires_grad_(), xd = x.detach().cuda().requires_grad_();
          // two draws in a row: the generator advances the same way on both devices
          Tensor yc = add(dropout(xc, p, true, &gc), dropout(mul(xc, 2.0), p, true, &gc));
          Tensor yd = add(dropout(xd, p, true, &gd), dropout(mul(xd, 2.0), p, true, &gd));
          CHECK(yd.is_cuda());
          check_close(yd.cpu(), yc, 0, 0, "dropout forward");
          Tensor mc = ne(dropout(x, p, true, &gc), 0.0), md = ne(dropout(x.cuda(), p, true, &gd), 0.0).cpu();
          CHECK(mc.to_vector<double>() == md.to_vector<double>());
          Tensor proj = rnd({n}, dt, 5, 1.0, false);
          sum(mul(yc, proj)).backward();
          sum(mul(yd, proj.cuda())).backward();
          CHECK(xd.grad().is_cuda());
          check_close(xd.grad().cpu(), xc.grad(), 0, 0, "dropout backward");
        });
      }
    }
  }
  // A non-contiguous input draws by row-major position, as on the CPU.
  Tensor x = rnd({6, 11}, kFloat32, 120, 1.0, false);
  Generator gc(3), gd(3);
  check_close(dropout(x.t(), 0.5, true, &gd).cpu(), dropout(x.t(), 0.5, true, &gc), 0, 0, "dropout of a view");
}

TEST_CASE("embedding, index_select, gather: forward and backward, repeated indices, views") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    for (int64_t D : {1, 31, 33, 1000}) {
      std::vector<int64_t> idx = random_ints(2 * 7, 0, 11, 130 + static_cast<uint64_t>(D));
      idx[3] = idx[0];
      check_parity([&](const In& x) { return embedding(x[0], from_vector<int64_t>(idx, {2, 7}).to(x[0].device())); },
                   {rnd({11, D}, dt, 131)}, 0, 0, "embedding D=" + std::to_string(D));
    }
    check_parity(
        [](const In& x) { return embedding(x[0], from_vector<int64_t>({4}, {1, 1}).to(x[0].device())); },
        {rnd({5, 33}, dt, 132)}, 0, 0, "embedding one index (T = 1)");
    check_parity([](const In& x) { return index_select(x[0], 1, from_vector<int64_t>({3, 0, 3, 3, 1}).to(x[0].device())); },
                 {rnd({3, 4, 35}, dt, 133)}, 0, 0, "index_select dim 1, repeated");
    check_parity([](const In& x) { return index_select(x[0].transpose(0, 2), 0, from_vector<int64_t>({2, 2, 0}).to(x[0].device())); },
                 {rnd({3, 4, 5}, dt, 134)}, 0, 0, "index_select of a view");
    check_parity([](const In& x) { return gather(x[0], -1, from_vector<int64_t>({4, 4, 0, 1, 2, 2, 3, 0, 0}, {3, 3}).to(x[0].device())); },
                 {rnd({3, 5}, dt, 135)}, 0, 0, "gather dim -1");
    check_parity([](const In& x) { return gather(x[0].transpose(0, 1), 0, from_vector<int64_t>({3, 0, 1, 1, 2, 3}, {2, 3}).to(x[0].device())); },
                 {rnd({4, 4}, dt, 136)}, 0, 0, "gather dim 0 of a view, smaller index");
    Tensor gidx = from_vector<int64_t>(random_ints(2 * 33 * 3, 0, 40, 137), {2, 33, 3});
    check_parity([&](const In& x) { return gather(x[0], 1, gidx.to(x[0].device())); }, {rnd({2, 40, 3}, dt, 137)},
                 0, 0, "gather dim 1 of 3-d");
  }
  // Other dtypes go through the same read kernel.
  Tensor xi = from_vector<int64_t>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor idx = from_vector<int64_t>({2, 0, 2});
  check_close(index_select(xi.cuda(), 0, idx.cuda()).cpu(), index_select(xi, 0, idx), 0, 0, "int64 index_select");
  Tensor xb = gt(xi, 3.0);
  check_close(gather(xb.cuda(), 1, from_vector<int64_t>({1, 1, 0}, {3, 1}).cuda()).cpu(),
              gather(xb, 1, from_vector<int64_t>({1, 1, 0}, {3, 1})), 0, 0, "bool gather");
  // Empty index.
  Tensor e = index_select(rnd({3, 4}, kFloat32, 138, 1.0, false).cuda(), 1, zeros({0}, {kInt64, Device::cuda()}));
  CHECK(e.shape() == Shape{3, 0});
}

TEST_CASE("embedding backward: heavy repetition accumulates exactly as on the CPU") {
  // 2000 indices, 1900 of them the same row: the device sums every row's gradients in index
  // order, as the CPU does, so the bits agree (tolerance 0) under every thread order.
  std::vector<int64_t> idx(2000, 3);
  std::vector<int64_t> other = random_ints(100, 0, 10, 140);
  for (size_t i = 0; i < other.size(); ++i) idx[i * 20] = other[i];
  for (DType dt : {kFloat32, kFloat64}) {
    check_parity([&](const In& x) { return embedding(x[0], from_vector<int64_t>(idx, {40, 50}).to(x[0].device())); },
                 {rnd({10, 37}, dt, 141)}, 0, 0, "embedding heavy repetition");
  }
}

TEST_CASE("index ops: bad indices raise the CPU's error on the device") {
  Tensor x = rnd({3, 5}, kFloat32, 150, 1.0, false);
  check_same_error([&](Device d) { index_select(x.to(d), 1, from_vector<int64_t>({0, 7, 9}).to(d)); },
                   "index_select: index 7 is out of range [0, 5) for dim 1 of shape [3, 5]");
  check_same_error([&](Device d) { embedding(x.to(d), from_vector<int64_t>({1, 2, -1, 3}, {2, 2}).to(d)); },
                   "embedding: index -1 is out of range [0, 3)");
  check_same_error([&](Device d) { gather(x.to(d), 0, from_vector<int64_t>({0, 1, 2, 3}, {2, 2}).to(d)); },
                   "gather: index 3 is out of range [0, 3)");
  // An empty result still checks its index, as the CPU does.
  check_same_error([&](Device d) { index_select(zeros({0, 5}, d), 1, from_vector<int64_t>({5}).to(d)); },
                   "index 5 is out of range");
}

TEST_CASE("cat, stack, split on the device, forward and backward") {
  for (DType dt : {kFloat32, kFloat64}) {
    check_parity([](const In& x) { return cat({x[0], x[1].t(), x[2]}, 1); },
                 {rnd({33, 3}, dt, 160), rnd({1, 33}, dt, 161), rnd({33, 4}, dt, 162)}, 0, 0, "cat dim 1");
    check_parity([](const In& x) { return stack({x[0], x[1]}, -1); }, {rnd({2, 31}, dt, 163), rnd({2, 31}, dt, 164)},
                 0, 0, "stack");
    check_parity(
        [](const In& x) {
          std::vector<Tensor> p = split(x[0], 2, 1);
          return cat({mul(p[2], 3.0), p[0]}, 1);
        },
        {rnd({3, 5}, dt, 165)}, 1e-15, 0, "split");
  }
  Tensor a = from_vector<int64_t>({1, 2, 3}), b = from_vector<int64_t>({4});
  check_close(cat({a.cuda(), b.cuda()}, 0).cpu(), cat({a, b}, 0), 0, 0, "int64 cat");
}

TEST_CASE("a training step of the fused ops runs on the device and matches the CPU") {
  // tokens -> embedding -> layer_norm -> sigmoid_gate -> dropout -> logits -> cross_entropy
  // (the logits as a broadcast product and sum: no matmul kernel is needed)
  const int64_t V = 13, B = 3, T = 5, D = 40;
  std::vector<int64_t> tok = random_ints(B * T, 0, V, 170), tgt = random_ints(B * T, 0, V, 171);
  tgt[4] = -100;
  const Fn step = [&](const In& p) {
    const Device dev = p[0].device();
    Tensor h = embedding(p[0], from_vector<int64_t>(tok, {B, T}).to(dev));         // [B, T, D]
    Tensor n = layer_norm(h, p[1], p[2], 1e-5);
    Tensor gated = sigmoid_gate(mul(n, p[3]), n);                                // [B, T, D]
    Generator g(9);
    Tensor d = dropout(gated, 0.2, true, &g);
    Tensor logits = sum(mul(d.reshape({B * T, 1, D}), p[4]), {2});                // [B·T, V]
    return cross_entropy(logits, from_vector<int64_t>(tgt).to(dev), -100, 0.1);
  };
  for (DType dt : {kFloat32, kFloat64}) {
    check_parity(step,
                 {rnd({V, D}, dt, 172), rnd({D}, dt, 173), rnd({D}, dt, 174), rnd({D}, dt, 175),
                  rnd({V, D}, dt, 176, 0.2)},
                 dt == kFloat32 ? 1e-4 : 1e-10, dt == kFloat32 ? 1e-5 : 1e-12, std::string("step ") + dtype_name(dt));
  }
}
