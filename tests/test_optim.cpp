// tests/test_optim.cpp: the optimizers, gradient clipping and learning-rate schedules on the
// CPU (nn/optim/optim.h, nn/optim/schedule.h).
//
// Each update is checked against numbers written out for 2-3 steps of a two-element parameter
// (values from the formulas by hand, agreeing with PyTorch 1.13's torch.optim.SGD / AdamW in
// float64) and against a plain scalar loop of the header's formula on random tensors; then
// the properties around it: weight-decay groups, lr_scale, bias correction, skipped
// parameters, identity, state_dict round trip and bit-identical resume, errors.
#include <cmath>

#include "helpers.h"
#include "nn/optim/optim.h"
#include "nn/optim/schedule.h"

using namespace aft;
using namespace aft::test;
using nn::ParamKind;
using nn::StateDict;

namespace {

// A module with one parameter of each kind, and a child (names "w", "b", "norm", "pos",
// "emb", "child.w", "child.b").
class Leaf : public nn::Module {
 public:
  Leaf(DType dt, Generator* g) : Module("Leaf") {
    w = register_parameter("w", randn({3, 2}, dt, g), ParamKind::Weight);
    b = register_parameter("b", randn({2}, dt, g), ParamKind::Bias);
  }
  Tensor w, b;
};

class Toy : public nn::Module {
 public:
  explicit Toy(DType dt = kFloat64, uint64_t seed = 1) : Module("Toy") {
    Generator g(seed);
    w = register_parameter("w", randn({4, 3}, dt, &g), ParamKind::Weight);
    b = register_parameter("b", randn({3}, dt, &g), ParamKind::Bias);
    norm = register_parameter("norm", randn({3}, dt, &g), ParamKind::Norm);
    pos = register_parameter("pos", randn({2, 2}, dt, &g), ParamKind::PositionBias);
    emb = register_parameter("emb", randn({5, 3}, dt, &g), ParamKind::Embedding);
    child = register_module("child", std::make_shared<Leaf>(dt, &g));
  }
  Tensor w, b, norm, pos, emb;
  std::shared_ptr<Leaf> child;
};

// A two-element float64 parameter [1, -2] in a one-group optimizer's list.
Tensor two() { return from_vector<double>({1.0, -2.0}).requires_grad_(); }

nn::ParamGroup group_of(const std::vector<Tensor>& ps, std::optional<double> wd = std::nullopt) {
  return nn::ParamGroup{.name = "g", .params = ps, .weight_decay = wd};
}

void set_grad(const Tensor& p, const std::vector<double>& g) {
  p.set_grad(from_vector<double>(g, p.shape()).to(p.dtype()));
}

// Gives every parameter of the model a gradient from a loss (different each step s).
void backward_loss(const nn::Module& m, int s) {
  Tensor loss;
  int k = 0;
  for (const nn::NamedParam& p : m.named_parameters()) {
    Tensor term = sum(mul(tanh(add(mul(p.tensor, 1.0 + 0.1 * k), 0.3 * s)), p.tensor));
    loss = loss.defined() ? add(loss, term) : term;
    ++k;
  }
  loss.backward();
}

std::vector<double> flat(const nn::Module& m) {
  std::vector<double> out;
  for (const nn::NamedParam& p : m.named_parameters())
    for (double v : p.tensor.to_vector<double>()) out.push_back(v);
  return out;
}

StateDict cloned(const StateDict& sd) {
  StateDict out;
  for (const auto& [n, t] : sd) out.emplace_back(n, t.clone());
  return out;
}

// Plain double loops of the header formulas, one element at a time.
struct RefAdamW {
  double lr, b1, b2, eps, wd;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= lr * (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps);
    }
  }
};

struct RefSGD {
  double lr, mu, wd;
  bool nesterov;
  std::vector<double> v;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (v.empty()) v.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + wd * p[i];
      v[i] = mu * v[i] + d;
      p[i] -= lr * (nesterov ? d + mu * v[i] : (mu == 0 ? d : v[i]));
    }
  }
};

}  // namespace

TEST_CASE("make_param_groups and single_group") {
  Toy m;
  auto groups = nn::make_param_groups(m, 0.1);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "decay");
  CHECK(groups[0].weight_decay == 0.1);
  CHECK(groups[0].names == std::vector<std::string>{"w", "emb", "child.w"});
  CHECK(groups[0].params[2].is_same(m.child->w));
  CHECK(groups[1].name == "no_decay");
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[1].names == std::vector<std::string>{"b", "norm", "pos", "child.b"});
  auto custom = nn::make_param_groups(m, 0.2, {ParamKind::Embedding});
  CHECK(custom[1].names == std::vector<std::string>{"emb"});
  CHECK(custom[0].names.size() == 6);

  auto one = nn::single_group(m);
  REQUIRE(one.size() == 1);
  CHECK(one[0].names.size() == 7);
  CHECK(!one[0].weight_decay.has_value());
  CHECK(nn::single_group(m, 0.3)[0].weight_decay == 0.3);
}

TEST_CASE("SGD: plain, momentum with L2 decay, Nesterov: three steps by hand") {
  SUBCASE("plain") {
    Tensor p = two();
    nn::SGD opt({group_of({p})}, {.lr = 0.1});
    set_grad(p, {0.5, 0.25});
    opt.step();
    check_values(p, {0.95, -2.025}, 1e-15);
    opt.step();
    check_values(p, {0.90, -2.05}, 1e-15);
    CHECK(opt.steps_taken() == 2);
    CHECK(opt.state_dict().size() == 1);  // no momentum buffer without momentum
  }
  SUBCASE("momentum 0.9, weight decay 0.1") {
    // d = g + 0.1 p; v = 0.9 v + d; p -= 0.1 v. Step 1: d = (0.6, 0.05) = v, p = (0.94, -2.005).
    // Step 2: d = (0.594, 0.0495), v = (1.134, 0.0945), p = (0.8266, -2.01445).
    // Step 3: d = (0.58266, 0.048555), v = (1.60326, 0.133605), p = (0.666274, -2.0278105).
    Tensor p = two();
    nn::SGD opt({group_of({p})}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
    const double want[3][2] = {{0.94, -2.005}, {0.8266, -2.01445}, {0.666274, -2.0278105}};
    for (auto& w : want) {
      set_grad(p, {0.5, 0.25});
      opt.step();
      check_values(p, {w[0], w[1]}, 1e-14);
    }
    check_values(opt.state_dict()[1].second, {1.60326, 0.133605}, 1e-14);
  }
  SUBCASE("Nesterov") {
    // As above, but p -= 0.1 (d + 0.9 v).
    // Step 1: p -= 0.1·(0.6 + 0.54, 0.05 + 0.045), p = (0.886, -2.0095).
    Tensor p = two();
    nn::SGD opt({group_of({p})},
                {.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.1});
    const double want[3][2] = {
        {0.886, -2.0095}, {0.725566, -2.0228695}, {0.525363646, -2.0395530295}};
    for (auto& w : want) {
      set_grad(p, {0.5, 0.25});
      opt.step();
      check_values(p, {w[0], w[1]}, 1e-14);
    }
  }
}

TEST_CASE("AdamW: three steps by hand, with decoupled weight decay and bias correction") {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.1; gradients (0.5, 0.25), (-0.3, 0.1), (0.2, -0.4).
  // Step 1: p = 0.99·p = (0.99, -1.98); m̂ = g, v̂ = g², so p -= 0.1·g/(|g| + 1e-8):
  // (0.99 - 0.1·0.5/0.50000001, -1.98 - 0.1·0.25/0.25000001) = (0.890000002, -2.079999996).
  Tensor p = two();
  nn::AdamW opt({group_of({p})},
                {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1});
  const double grads[3][2] = {{0.5, 0.25}, {-0.3, 0.1}, {0.2, -0.4}};
  const double want[3][2] = {{0.890000002, -2.079999996},
                             {0.8619501989217752, -2.1490575117768707},
                             {0.8185879287816642, -2.1133207973524244}};
  for (int s = 0; s < 3; ++s) {
    set_grad(p, {grads[s][0], grads[s][1]});
    opt.step();
    check_values(p, {want[s][0], want[s][1]}, 1e-14);
  }
  // m after 3 steps: 0.9·(0.9·0.1·g1 + 0.1·g2) + 0.1·g3.
  const double m0 = 0.9 * (0.9 * 0.05 - 0.03) + 0.02, m1 = 0.9 * (0.9 * 0.025 + 0.01) - 0.04;
  StateDict sd = opt.state_dict();
  CHECK(sd[1].first == "exp_avg.g.0");
  check_values(sd[1].second, {m0, m1}, 1e-15);
  CHECK(sd[0].second.item<int64_t>() == 3);
}

TEST_CASE("AdamW and SGD match plain loops of the formulas on random tensors, float32/64") {
  for (DType dt : {kFloat64, kFloat32}) {
    INFO(dtype_name(dt));
    const double tol = dt == kFloat64 ? 1e-12 : 2e-5;
    Generator gen(7);
    Tensor pa = randn({37, 5}, dt, &gen).detach().requires_grad_();
    Tensor ps = pa.detach().clone().requires_grad_();
    std::vector<double> ra = pa.to_vector<double>(), rs = ra;
    nn::AdamW adam({group_of({pa}, 0.05)}, {.lr = 0.02, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6});
    nn::SGD sgd({group_of({ps}, 0.01)}, {.lr = 0.05, .momentum = 0.7, .nesterov = true});
    RefAdamW ref_a{0.02, 0.8, 0.99, 1e-6, 0.05};
    RefSGD ref_s{0.05, 0.7, 0.01, true};
    for (int s = 0; s < 4; ++s) {
      Tensor g = randn({37, 5}, dt, &gen);
      pa.set_grad(g.clone());
      ps.set_grad(g.clone());
      std::vector<double> gv = g.to_vector<double>();
      adam.step();
      sgd.step();
      ref_a.step(ra, gv);
      ref_s.step(rs, gv);
      check_close(pa, from_vector<double>(ra, pa.shape()), tol, tol, "adamw");
      check_close(ps, from_vector<double>(rs, ps.shape()), tol, tol, "sgd");
    }
  }
}

TEST_CASE("weight decay groups and lr_scale") {
  // Zero gradients: AdamW's moment term is 0/(0 + eps) = 0, so only the decay moves p.
  Toy m;
  auto groups = nn::make_param_groups(m, 0.5);
  groups[1].lr_scale = 0.5;
  groups[1].weight_decay = 0.2;  // the no_decay group decays too here, at half the rate
  nn::AdamW opt(groups, {.lr = 0.1});
  StateDict before = cloned(m.state_dict());
  for (const nn::NamedParam& p : m.named_parameters()) p.tensor.set_grad(zeros_like(p.tensor));
  opt.step();
  for (size_t i = 0; i < before.size(); ++i) {
    const std::string& name = before[i].first;
    bool decayed = name == "w" || name == "emb" || name == "child.w";
    double factor = decayed ? 1 - 0.1 * 0.5 : 1 - 0.05 * 0.2;
    INFO(name);
    check_close(m.state_dict()[i].second, mul(before[i].second, factor), 1e-15, 0);
  }
  // Groups that leave weight_decay unset take the options' value.
  Toy m2;
  nn::SGD sgd(nn::single_group(m2), {.lr = 0.1, .weight_decay = 0.3});
  Tensor w0 = m2.w.clone();
  m2.w.set_grad(zeros_like(m2.w));
  sgd.step();
  check_close(m2.w, mul(w0, 1 - 0.1 * 0.3), 1e-15, 0);
}

TEST_CASE("AdamW bias correction: the first step moves each element by about lr, whatever |g|") {
  Tensor p = zeros({4}, kFloat64).requires_grad_();
  nn::AdamW opt({group_of({p}, 0.0)}, {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-12});
  set_grad(p, {1e-3, -1.0, 100.0, -5e4});
  opt.step();
  check_values(p, {-0.01, 0.01, -0.01, 0.01}, 1e-10);
  // Step 2, same gradient: m̂ = g and v̂ = g² again, so again a step of lr.
  set_grad(p, {1e-3, -1.0, 100.0, -5e4});
  opt.step();
  check_values(p, {-0.02, 0.02, -0.02, 0.02}, 1e-10);
}

TEST_CASE("parameters without a gradient are skipped, their state untouched; identity kept") {
  Tensor a = two(), b = from_vector<double>({3.0, 4.0}).requires_grad_();
  const void* a_data = a.raw_data();
  nn::AdamW opt({group_of({a, b})}, {.lr = 0.1});
  set_grad(a, {0.5, 0.25});
  opt.step();
  check_values(b, {3.0, 4.0}, 0);
  StateDict s1 = cloned(opt.state_dict());
  check_values(s1[3].second, {0.0, 0.0}, 0);  // exp_avg.g.1: never updated, zero
  Tensor a1 = a.detach().clone();
  a.zero_grad();
  set_grad(b, {1.0, 1.0});
  const size_t nodes = autograd::tape_size();
  opt.step();
  CHECK(autograd::tape_size() == nodes);  // nothing recorded
  check_values(a, a1.to_vector<double>(), 0);
  StateDict s2 = opt.state_dict();
  check_values(s2[1].second, s1[1].second.to_vector<double>(), 0);  // a's moments untouched
  check_values(s2[2].second, s1[2].second.to_vector<double>(), 0);
  CHECK(s2[3].second.to_vector<double>()[0] > 0);
  CHECK(opt.steps_taken() == 2);
  // In place: same handle, same memory, still a leaf requiring grad, nothing on the tape.
  CHECK(opt.groups()[0].params[0].is_same(a));
  CHECK(a.raw_data() == a_data);
  CHECK(a.is_leaf());
  CHECK(a.requires_grad());
  // The storage version moves: a graph that saved b before the step refuses backward.
  Tensor y = sum(mul(b, b));
  set_grad(b, {1.0, 1.0});
  opt.step();
  check_error([&] { y.backward(); }, "modified in place");
}

TEST_CASE("zero_grad drops every gradient") {
  Toy m;
  nn::SGD opt(nn::single_group(m), {});
  backward_loss(m, 0);
  CHECK(m.w.grad().defined());
  opt.zero_grad();
  for (const nn::NamedParam& p : m.named_parameters()) CHECK(!p.tensor.grad().defined());
}

TEST_CASE("strided parameters and gradients") {
  Tensor base = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor p = base.t().contiguous().t().detach().requires_grad_();  // [2, 3] with strides (1, 2)
  REQUIRE(!p.is_contiguous());
  Tensor q = base.clone().requires_grad_();
  Tensor g = from_vector<double>({0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, {3, 2}).t();  // strided too
  p.set_grad(g);
  q.set_grad(g.contiguous());
  nn::AdamW a1({group_of({p})}, {}), a2({group_of({q})}, {});
  a1.step();
  a2.step();
  CHECK(p.strides() == Strides{1, 2});
  check_close(p, q, 0, 0);
}

TEST_CASE("state_dict names and round trip; a resumed optimizer continues bit-identically") {
  for (int kind = 0; kind < 3; ++kind) {
    INFO("kind ", kind);
    auto make = [&](const nn::Module& m) -> std::unique_ptr<nn::Optimizer> {
      if (kind == 0)
        return std::make_unique<nn::AdamW>(nn::make_param_groups(m, 0.1),
                                           nn::AdamWOptions{.lr = 0.01});
      return std::make_unique<nn::SGD>(
          nn::make_param_groups(m, 0.1),
          nn::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = kind == 2});
    };
    Toy a;
    auto oa = make(a);
    for (int s = 0; s < 3; ++s) {
      oa->zero_grad();
      backward_loss(a, s);
      oa->step();
    }
    StateDict saved_model = cloned(a.state_dict()), saved_opt = cloned(oa->state_dict());
    CHECK(saved_opt[0].first == "step");
    CHECK(saved_opt[0].second.ndim() == 0);
    CHECK(saved_opt[0].second.dtype() == kInt64);
    CHECK(saved_opt[0].second.item<int64_t>() == 3);
    CHECK(saved_opt.size() == 1 + (kind == 0 ? 2 : 1) * 7);
    CHECK(saved_opt[1].first == (kind == 0 ? "exp_avg.w" : "momentum.w"));
    if (kind == 0) CHECK(saved_opt[2].first == "exp_avg_sq.w");
    for (int s = 3; s < 6; ++s) {
      oa->zero_grad();
      backward_loss(a, s);
      oa->step();
    }
    Toy b(kFloat64, 99);  // different initial values, overwritten by the load
    auto ob = make(b);
    b.load_state_dict(saved_model);
    ob->load_state_dict(saved_opt);
    CHECK(ob->steps_taken() == 3);
    for (int s = 3; s < 6; ++s) {
      ob->zero_grad();
      backward_loss(b, s);
      ob->step();
    }
    CHECK(flat(a) == flat(b));
    StateDict sa = oa->state_dict(), sb = ob->state_dict();
    for (size_t i = 0; i < sa.size(); ++i)
      CHECK(sa[i].second.to_vector<double>() == sb[i].second.to_vector<double>());
  }
}

TEST_CASE("load_state_dict errors name what does not match, and change nothing") {
  Toy m;
  nn::AdamW opt(nn::make_param_groups(m, 0.1), {});
  backward_loss(m, 0);
  opt.step();
  StateDict good = cloned(opt.state_dict());
  auto without = [&](const std::string& name) {
    StateDict out;
    for (auto& e : good)
      if (e.first != name) out.push_back(e);
    return out;
  };
  check_error([&] { opt.load_state_dict(without("exp_avg.child.b")); }, "missing: exp_avg.child.b");
  check_error([&] { opt.load_state_dict(without("step")); }, "missing: step");
  StateDict extra = good;
  extra.emplace_back("exp_avg.nothing", zeros({2}));
  check_error([&] { opt.load_state_dict(extra); }, "unexpected: exp_avg.nothing");
  StateDict bad_shape = good;
  bad_shape[1].second = zeros({3}, kFloat64);
  check_error([&] { opt.load_state_dict(bad_shape); }, "exp_avg.w (expected [4, 3], got [3])");
  StateDict bad_step = good;
  bad_step[0].second = scalar_tensor(3.0, kFloat64);
  check_error([&] { opt.load_state_dict(bad_step); },
              "step (expected a 0-d int64 tensor, got float64 [])");
  StateDict twice = good;
  twice.push_back(good[1]);
  check_error([&] { opt.load_state_dict(twice); }, "'exp_avg.w' appears twice");
  // Everything at once in one message; the live state is unchanged.
  StateDict all = without("exp_avg_sq.pos");
  all.emplace_back("zzz", zeros({1}));
  all[1].second = zeros({1}, kFloat64);
  check_error([&] { opt.load_state_dict(all); },
              "missing: exp_avg_sq.pos; unexpected: zzz; mismatched: exp_avg.w");
  StateDict now = opt.state_dict();
  for (size_t i = 0; i < now.size(); ++i)
    CHECK(now[i].second.to_vector<double>() == good[i].second.to_vector<double>());
  // Values of another dtype are converted.
  StateDict f32;
  for (auto& [n, t] : good) f32.emplace_back(n, n == "step" ? t : t.to(kFloat32));
  opt.load_state_dict(f32);
  CHECK(opt.state_dict()[1].second.dtype() == kFloat64);
  // SGD without momentum has no buffers: a momentum entry is unexpected.
  nn::SGD sgd(nn::single_group(m), {});
  check_error(
      [&] {
        sgd.load_state_dict(
            {{"step", from_vector<int64_t>({1}, Shape{})}, {"momentum.w", zeros({4, 3})}});
      },
      "unexpected: momentum.w");
}

TEST_CASE("optimizer argument errors") {
  Tensor a = two(), b = two();
  check_error([&] { nn::SGD({group_of({a}), group_of({a})}, {}); }, "appears twice");
  nn::ParamGroup g = group_of({a, b});
  g.names = {"x"};
  check_error([&] { nn::SGD({g}, {}); }, "has 1 names for 2 parameters");
  g.names = {"x", "x"};
  check_error([&] { nn::SGD({g}, {}); }, "parameter name 'x' appears twice");
  check_error([&] { nn::SGD({group_of({a})}, {.nesterov = true}); },
              "Nesterov momentum needs momentum > 0");
  check_error([&] { nn::SGD({group_of({a})}, {.momentum = -1}); },
              "momentum must be finite and >= 0");
  check_error([&] { nn::AdamW({group_of({a})}, {.beta1 = 1.0}); }, "betas must be in [0, 1)");
  check_error([&] { nn::AdamW({group_of({a})}, {.eps = -1}); }, "eps must be finite");
  check_error([&] { nn::AdamW({group_of({a}, -0.1)}, {}).step(); },
              "weight decay of group 'g' must be finite");
  check_error([&] { nn::AdamW({group_of({from_vector<int64_t>({1})})}, {}); },
              "must be a float tensor");
  nn::AdamW opt({group_of({a})}, {});
  opt.set_lr(-1);
  set_grad(a, {1, 1});
  check_error([&] { opt.step(); }, "learning rate must be finite and >= 0");
}

TEST_CASE("multithreaded CPU updates give the same bits for any thread count") {
  Generator gen(3);
  // Odd sizes: the chunk boundaries of each thread count cut the vectorised loops differently.
  Tensor p0 = randn({199999}, kFloat32, &gen), g = randn({199999}, kFloat32, &gen);
  std::vector<std::vector<float>> results;
  const int saved = num_threads();
  for (int threads : {1, 2, 3, 7}) {
    set_num_threads(threads);
    Tensor p = p0.clone().requires_grad_();
    nn::AdamW opt({group_of({p})}, {});
    for (int s = 0; s < 2; ++s) {
      p.set_grad(g.clone());
      opt.step();
    }
    results.push_back(p.to_vector<float>());
  }
  set_num_threads(saved);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
  CHECK(results[0] == results[3]);
}

TEST_CASE("clip_grad_norm: norm, scaling, no-op below the limit, inf and NaN") {
  Tensor a = zeros({2}, kFloat64).requires_grad_(), b = zeros({1}, kFloat32).requires_grad_();
  Tensor c = zeros({3}, kFloat64).requires_grad_();  // no gradient: skipped
  auto reset = [&] {
    set_grad(a, {3.0, 4.0});
    set_grad(b, {12.0});
  };
  reset();
  CHECK(nn::clip_grad_norm({a, b, c}, 100.0) == 13.0);
  check_values(a.grad(), {3.0, 4.0}, 0);
  const double k = 6.5 / (13.0 + 1e-6);
  CHECK(nn::clip_grad_norm({a, b, c}, 6.5) == 13.0);
  check_values(a.grad(), {3.0 * k, 4.0 * k}, 1e-15);
  check_values(b.grad(), {12.0 * k}, 1e-6);
  CHECK(std::fabs(nn::clip_grad_norm({a, b}, 6.5) - 6.5) < 1e-5);  // already clipped
  CHECK(!c.grad().defined());
  for (double bad : {INFINITY, NAN}) {
    reset();
    set_grad(a, {3.0, bad});
    double n = nn::clip_grad_norm({a, b}, 1.0);
    CHECK((std::isnan(bad) ? std::isnan(n) : n == INFINITY));
    check_values(b.grad(), {12.0}, 0);  // not scaled
  }
  CHECK(nn::clip_grad_norm({c}, 1.0) == 0.0);
  check_error([&] { nn::clip_grad_norm({a}, 0.0); }, "max_norm must be finite and > 0");
  check_error([&] { nn::clip_grad_norm({a}, NAN); }, "max_norm must be finite and > 0");
}

TEST_CASE("clip_grad_norm accumulates float32 gradients in float64, deterministically") {
  // 4096² = 2^24, plus 1000 ones: a float32 running sum would stay at 2^24.
  std::vector<float> v(1001, 1.0f);
  v[0] = 4096.0f;
  Tensor p = zeros({1001}, kFloat32).requires_grad_();
  p.set_grad(from_vector<float>(v));
  CHECK(nn::clip_grad_norm({p}, 1e9) == std::sqrt(16777216.0 + 1000.0));
  // Same bits for any thread count, on gradients of many chunks.
  Generator gen(5);
  Tensor q = zeros({200003}, kFloat32).requires_grad_();
  q.set_grad(randn({200003}, kFloat32, &gen));
  const int saved = num_threads();
  set_num_threads(1);
  double n1 = nn::clip_grad_norm({q}, 1e9);
  set_num_threads(3);
  double n3 = nn::clip_grad_norm({q}, 1e9);
  set_num_threads(saved);
  CHECK(n1 == n3);
  std::vector<float> qv = q.grad().to_vector<float>();
  double ref = 0;
  for (float x : qv) ref += static_cast<double>(x) * x;
  CHECK(std::fabs(n1 - std::sqrt(ref)) <= 1e-12 * n1);
}

TEST_CASE("clip_grad_norm on a strided gradient replaces it by a dense copy") {
  Tensor p = zeros({2, 2}, kFloat64).requires_grad_();
  p.set_grad(from_vector<double>({3, 0, 0, 4}, {2, 2}).t());
  REQUIRE(!p.grad().is_contiguous());
  CHECK(nn::clip_grad_norm({p}, 1.0) == 5.0);
  CHECK(p.grad().is_contiguous());
  check_values(p.grad(), {3 / (5 + 1e-6), 0, 0, 4 / (5 + 1e-6)}, 1e-15);
}

TEST_CASE("LRSchedule: warm-up, cosine and linear decay, min_lr, constant") {
  nn::LRSchedule s{.base_lr = 1.0,
                   .warmup_steps = 4,
                   .total_steps = 10,
                   .decay = nn::LRSchedule::Decay::Cosine,
                   .min_lr = 0.1};
  CHECK(s.at(0) == doctest::Approx(0.25).epsilon(1e-15));
  CHECK(s.at(1) == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(s.at(3) == 1.0);
  CHECK(s.at(4) == 1.0);  // decay starts at base
  CHECK(s.at(5) == doctest::Approx(0.1 + 0.45 * (1 + std::cos(M_PI / 6))).epsilon(1e-14));
  CHECK(s.at(7) == doctest::Approx(0.55).epsilon(1e-14));  // cosine midpoint
  CHECK(s.at(9) == doctest::Approx(0.1 + 0.45 * (1 + std::cos(5 * M_PI / 6))).epsilon(1e-14));
  CHECK(s.at(10) == 0.1);
  CHECK(s.at(1000) == 0.1);
  for (int64_t i = 5; i < 10; ++i) CHECK(s.at(i) < s.at(i - 1));
  s.decay = nn::LRSchedule::Decay::Linear;
  CHECK(s.at(4) == 1.0);
  CHECK(s.at(5) == doctest::Approx(1.0 - 0.9 / 6).epsilon(1e-14));
  CHECK(s.at(7) == doctest::Approx(0.55).epsilon(1e-14));
  CHECK(s.at(10) == 0.1);
  s.decay = nn::LRSchedule::Decay::Constant;
  CHECK(s.at(0) == 0.25);
  CHECK(s.at(5) == 1.0);
  CHECK(s.at(500) == 1.0);
  nn::LRSchedule nowarm{.base_lr = 0.5, .warmup_steps = 0, .total_steps = 4};
  CHECK(nowarm.at(0) == 0.5);
  CHECK(nowarm.at(2) == doctest::Approx(0.25).epsilon(1e-14));
  CHECK(nowarm.at(4) == 0.0);
  nn::LRSchedule all_warm{.base_lr = 2.0, .warmup_steps = 2, .total_steps = 2, .min_lr = 0.5};
  CHECK(all_warm.at(1) == 2.0);
  CHECK(all_warm.at(2) == 0.5);
}

TEST_CASE("LRSchedule errors and parse_decay") {
  CHECK(nn::LRSchedule::parse_decay("cosine") == nn::LRSchedule::Decay::Cosine);
  CHECK(nn::LRSchedule::parse_decay("linear") == nn::LRSchedule::Decay::Linear);
  CHECK(nn::LRSchedule::parse_decay("constant") == nn::LRSchedule::Decay::Constant);
  check_error([] { nn::LRSchedule::parse_decay("cos"); },
              "unknown decay 'cos' (valid: cosine, linear, constant)");
  nn::LRSchedule s{.warmup_steps = 5, .total_steps = 3};
  check_error([&] { s.at(0); }, "0 <= warmup_steps <= total_steps");
  s.total_steps = 10;
  check_error([&] { s.at(-1); }, "step must be >= 0");
  s.base_lr = -1;
  check_error([&] { s.at(0); }, "must be finite and >= 0");
}
