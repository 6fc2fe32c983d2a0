// tests/cuda/test_cuda_optim.cpp: the fused multi-tensor optimizer kernels (cuda/optim.cu)
// against the CPU optimizers: AdamW, SGD (momentum, Nesterov, none) and clip_grad_norm, in
// float32 and float64, on many tensors at the sizes where chunked kernels go wrong (1, 31,
// 1000, 4097 and 8193 elements: one partial block, one full and one partial, several chunks
// of 8192), more tensors than one launch takes (48), two parameter groups with their own
// weight decay and learning-rate scale, and parameters skipped for lack of a gradient.
//
// The CPU and the kernels evaluate the same expressions (core/math/optim.h); the kernels may
// fuse multiply-adds (nvcc, and g++ for the emulator) where the CPU loops do not, so results
// agree within a few ulp (float64 1e-12, float32 1e-5 relative), under every thread and block
// order of the emulator. Skipped (exit 77) without a device.
#include "../helpers.h"
#include "nn/optim/optim.h"

#if AFT_CUDA_EMULATE
#include "cuda/emu/emulator.h"
#endif

using namespace aft;
using namespace aft::test;
using nn::StateDict;

int main_guard = (require_cuda_or_skip(), 0);

namespace {

double rtol_of(DType dt) { return dt == kFloat32 ? 1e-5 : 1e-12; }
double atol_of(DType dt) { return dt == kFloat32 ? 1e-6 : 1e-14; }

const int64_t kSizes[] = {1, 31, 1000, 4097, 8193};

// `count` parameters cycling through kSizes (shapes [n] and [n/...] alternating), a CPU set
// and an identical CUDA set.
struct Twins {
  std::vector<Tensor> cpu, dev;
};

Twins make_params(int count, DType dt, uint64_t seed) {
  Generator gen(seed);
  Twins t;
  for (int i = 0; i < count; ++i) {
    int64_t n = kSizes[i % 5];
    Shape shape = (i % 2 == 0 || n % 31 != 0) ? Shape{n} : Shape{n / 31, 31};
    Tensor c = randn(shape, dt, &gen).detach().requires_grad_();
    t.cpu.push_back(c);
    t.dev.push_back(c.detach().cuda().requires_grad_());
  }
  return t;
}

// Two groups: even indices decay (wd 0.1), odd ones not, at half the learning rate.
std::vector<nn::ParamGroup> groups_of(const std::vector<Tensor>& ps) {
  nn::ParamGroup a{.name = "decay", .weight_decay = 0.1},
      b{.name = "no_decay", .weight_decay = 0.0, .lr_scale = 0.5};
  for (size_t i = 0; i < ps.size(); ++i) (i % 2 == 0 ? a : b).params.push_back(ps[i]);
  return {a, b};
}

// The same random gradients on both sets; parameter i gets none when skip(i).
void set_grads(const Twins& t, uint64_t seed, const std::function<bool(size_t)>& skip) {
  Generator gen(seed);
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    Tensor g = randn(t.cpu[i].shape(), t.cpu[i].dtype(), &gen);
    if (skip(i)) {
      t.cpu[i].zero_grad();
      t.dev[i].zero_grad();
    } else {
      t.cpu[i].set_grad(g);
      t.dev[i].set_grad(g.cuda());
    }
  }
}

void check_same(const Twins& t, const nn::Optimizer& oc, const nn::Optimizer& od, DType dt,
                const char* what) {
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    CHECK(t.dev[i].is_cuda());
    check_close(t.dev[i], t.cpu[i], rtol_of(dt), atol_of(dt), what);
  }
  StateDict sc = oc.state_dict(), sd = od.state_dict();
  REQUIRE(sc.size() == sd.size());
  for (size_t i = 0; i < sc.size(); ++i) {
    INFO(sc[i].first);
    CHECK(sc[i].first == sd[i].first);
    if (i > 0) CHECK(sd[i].second.is_cuda());
    check_close(sd[i].second, sc[i].second, rtol_of(dt), atol_of(dt), what);
  }
}

using MakeOpt = std::function<std::unique_ptr<nn::Optimizer>(std::vector<nn::ParamGroup>)>;

void check_optimizer_parity(const MakeOpt& make, const char* what) {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(what, " ", dtype_name(dt));
    for_each_order([&] {
      Twins t = make_params(61, dt, 11);  // two launches of 48 + 13 tensors
      auto oc = make(groups_of(t.cpu)), od = make(groups_of(t.dev));
      for (int s = 0; s < 3; ++s) {
        // Step 1 skips every 7th parameter; step 2 skips every 5th (some were skipped before).
        set_grads(t, 100 + s,
                  [&](size_t i) { return (s == 1 && i % 7 == 3) || (s == 2 && i % 5 == 0); });
        oc->step();
        od->step();
        check_same(t, *oc, *od, dt, what);
      }
    });
  }
}

}  // namespace

TEST_CASE("AdamW on CUDA matches the CPU (float32, float64, many tensors, groups, skipped)") {
  check_optimizer_parity(
      [](std::vector<nn::ParamGroup> g) {
        return std::make_unique<nn::AdamW>(
            std::move(g), nn::AdamWOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6});
      },
      "adamw");
}

TEST_CASE("SGD on CUDA matches the CPU: momentum, Nesterov, none") {
  check_optimizer_parity(
      [](std::vector<nn::ParamGroup> g) {
        return std::make_unique<nn::SGD>(std::move(g), nn::SGDOptions{.lr = 0.05, .momentum = 0.9});
      },
      "sgd momentum");
  check_optimizer_parity(
      [](std::vector<nn::ParamGroup> g) {
        return std::make_unique<nn::SGD>(
            std::move(g), nn::SGDOptions{.lr = 0.05, .momentum = 0.5, .nesterov = true});
      },
      "sgd nesterov");
  check_optimizer_parity(
      [](std::vector<nn::ParamGroup> g) {
        return std::make_unique<nn::SGD>(std::move(g), nn::SGDOptions{.lr = 0.05});
      },
      "sgd plain");
}

TEST_CASE("clip_grad_norm on CUDA matches the CPU: the norm and the scaled gradients") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    for_each_order([&] {
      Twins t = make_params(53, dt, 21);
      set_grads(t, 5, [](size_t i) { return i % 9 == 4; });
      double free_c = nn::clip_grad_norm(t.cpu, 1e9), free_d = nn::clip_grad_norm(t.dev, 1e9);
      CHECK(std::fabs(free_c - free_d) <= 1e-13 * free_c);  // summation orders differ
      double nc = nn::clip_grad_norm(t.cpu, 3.0), nd = nn::clip_grad_norm(t.dev, 3.0);
      CHECK(nc == free_c);
      CHECK(nd == free_d);
      for (size_t i = 0; i < t.cpu.size(); ++i) {
        if (!t.cpu[i].grad().defined()) {
          CHECK(!t.dev[i].grad().defined());
          continue;
        }
        CHECK(t.dev[i].grad().is_cuda());
        check_close(t.dev[i].grad(), t.cpu[i].grad(), dt == kFloat32 ? 1e-6 : 1e-13, 0,
                    "clipped grad");
      }
      double after = nn::clip_grad_norm(t.dev, 1e9);
      CHECK(std::fabs(after - 3.0) < 1e-5);
    });
  }
}

TEST_CASE("clip_grad_norm on CUDA: inf and NaN gradients are not scaled; CPU and CUDA mixed") {
  for (double bad : {INFINITY, NAN}) {
    Tensor a = zeros({4097}, kFloat32).cuda().requires_grad_();
    Tensor ga = full({4097}, 2.0, kFloat32);
    Tensor host = ga.clone();
    host.data<float>()[4000] = static_cast<float>(bad);
    a.set_grad(host.cuda());
    double n = nn::clip_grad_norm({a}, 1.0);
    CHECK((std::isnan(bad) ? std::isnan(n) : n == INFINITY));
    CHECK(a.grad().to_vector<float>()[0] == 2.0f);
  }
  Tensor c = zeros({2}, kFloat64).requires_grad_(),
         d = zeros({1}, kFloat32).cuda().requires_grad_();
  c.set_grad(from_vector<double>({3.0, 4.0}));
  d.set_grad(from_vector<float>({12.0f}).cuda());
  CHECK(nn::clip_grad_norm({c, d}, 6.5) == 13.0);
  const double k = 6.5 / (13.0 + 1e-6);
  check_values(c.grad(), {3 * k, 4 * k}, 1e-15);
  check_values(d.grad(), {12 * k}, 1e-6);
}

#if AFT_CUDA_EMULATE
TEST_CASE("launch counts: one AdamW/SGD launch per 48 tensors and dtype; clip in few launches") {
  namespace emu = cuda::emu;
  Twins t = make_params(61, kFloat64, 3);
  nn::AdamW adam(groups_of(t.dev), {});
  set_grads(t, 1, [](size_t) { return false; });
  adam.step();  // the first step also creates the state (fill launches)
  emu::reset_stats();
  adam.step();
  CHECK(emu::stats().launches == 2);
  nn::SGD sgd(groups_of(t.dev), {.momentum = 0.9});
  sgd.step();
  emu::reset_stats();
  sgd.step();
  CHECK(emu::stats().launches == 2);
  emu::reset_stats();
  nn::clip_grad_norm(t.dev, 1e-3);  // 2 partial-sum launches, 1 reduction, 2 scaling launches
  CHECK(emu::stats().launches == 5);
  // Mixed dtypes: one more launch per dtype.
  Tensor f = zeros({10}, kFloat32).cuda().requires_grad_();
  f.set_grad(ones({10}, kFloat32).cuda());
  std::vector<Tensor> mixed = {t.dev[0], f};
  nn::AdamW m2({nn::ParamGroup{.name = "all", .params = mixed}}, {});
  m2.step();
  emu::reset_stats();
  m2.step();
  CHECK(emu::stats().launches == 2);
}
#endif

TEST_CASE("CUDA optimizer state: round trip through the host; parameters moved to the device") {
  Twins t = make_params(7, kFloat64, 8);
  nn::AdamW oc(groups_of(t.cpu), {.lr = 0.02}), od(groups_of(t.dev), {.lr = 0.02});
  set_grads(t, 1, [](size_t) { return false; });
  oc.step();
  od.step();
  // CUDA state -> host -> a fresh CUDA optimizer; CPU state -> a fresh CUDA optimizer.
  StateDict host;
  for (auto& [n, v] : od.state_dict()) host.emplace_back(n, v.cpu());
  Twins t2 = make_params(7, kFloat64, 8);
  for (size_t i = 0; i < t.dev.size(); ++i) {
    autograd::NoGradGuard ng;
    t2.dev[i].copy_(t.dev[i]);
  }
  nn::AdamW od2(groups_of(t2.dev), {.lr = 0.02});
  od2.load_state_dict(host);
  CHECK(od2.state_dict()[1].second.is_cuda());
  set_grads(t, 2, [](size_t) { return false; });
  for (size_t i = 0; i < t.dev.size(); ++i) t2.dev[i].set_grad(t.dev[i].grad().clone());
  oc.step();
  od.step();
  od2.step();
  for (size_t i = 0; i < t.dev.size(); ++i) {
    check_close(t2.dev[i], t.dev[i], 0, 0, "resumed");
    check_close(t.dev[i], t.cpu[i], rtol_of(kFloat64), atol_of(kFloat64), "cuda vs cpu");
  }
  // Parameters moved to the device after a CPU step: the state follows at the next step.
  Twins m = make_params(3, kFloat32, 9);
  nn::SGD sc(groups_of(m.cpu), {.momentum = 0.9});
  std::vector<Tensor> moving;
  for (const Tensor& p : m.dev) moving.push_back(p.detach().cpu().requires_grad_());
  nn::SGD sv(groups_of(moving), {.momentum = 0.9});
  for (int s = 0; s < 3; ++s) {
    set_grads(m, 40 + s, [](size_t) { return false; });
    for (size_t i = 0; i < moving.size(); ++i)
      moving[i].set_grad(s == 0 ? m.cpu[i].grad().clone() : m.dev[i].grad().clone());
    sc.step();
    sv.step();
    if (s == 0) {
      autograd::NoGradGuard ng;
      for (Tensor& p : moving) p.set_data(p.cuda());
    }
  }
  for (size_t i = 0; i < moving.size(); ++i) {
    CHECK(moving[i].is_cuda());
    check_close(moving[i], m.cpu[i], rtol_of(kFloat32), atol_of(kFloat32), "moved");
  }
  CHECK(sv.state_dict()[1].second.is_cuda());
}

TEST_CASE("a parameter group on two devices is an error") {
  Tensor a = zeros({2}, kFloat64).requires_grad_(),
         b = zeros({2}, kFloat64).cuda().requires_grad_();
  nn::SGD opt({nn::ParamGroup{.name = "mixed", .names = {"a", "b"}, .params = {a, b}}}, {});
  check_error([&] { opt.step(); },
              "parameter group 'mixed' mixes devices: 'a' is on cpu and 'b' on cuda:0");
}
