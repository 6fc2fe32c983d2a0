// tests/test_nn_modules.cpp: Module (registration, names, kinds, state_dict, to), the basic
// layers and the AFT layers and block: shapes, values against the ops they are made of,
// gradients (gradcheck in float64 at small sizes), and errors.
#include "helpers.h"
#include "nn/aft_layers.h"
#include "nn/aft_lm.h"
#include "nn/init.h"

using namespace aft;
using namespace aft::test;
using namespace aft::nn;

namespace {

// A two-layer model with a buffer, to exercise names and state.
class Tiny : public Module {
 public:
  Tiny() : Module("Tiny") {
    a = register_module("a", std::make_shared<Linear>(3, 4));
    norm = register_module("norm", std::make_shared<LayerNorm>(4));
    steps = register_buffer("steps", zeros({1}, kInt64));
  }
  std::shared_ptr<Linear> a;
  std::shared_ptr<LayerNorm> norm;
  Tensor steps;
};

}  // namespace

TEST_CASE("Module: names, kinds, counts, state_dict, to") {
  Tiny m;
  std::vector<NamedParam> ps = m.named_parameters();
  REQUIRE(ps.size() == 4);
  CHECK(ps[0].name == "a.weight");
  CHECK(ps[0].kind == ParamKind::Weight);
  CHECK(ps[1].name == "a.bias");
  CHECK(ps[1].kind == ParamKind::Bias);
  CHECK(ps[2].name == "norm.weight");
  CHECK(ps[2].kind == ParamKind::Norm);
  CHECK(m.num_parameters() == 3 * 4 + 4 + 4 + 4);
  CHECK(m.a->weight.requires_grad());
  StateDict sd = m.state_dict();
  REQUIRE(sd.size() == 5);
  CHECK(sd[4].first == "steps");
  CHECK(m.describe().find("a: Linear") != std::string::npos);

  // A round trip through another instance.
  Tiny n;
  n.load_state_dict(sd);
  check_close(n.a->weight, m.a->weight, 0, 0);
  // Errors name what is wrong.
  StateDict missing(sd.begin(), sd.end() - 1);
  check_error([&] { n.load_state_dict(missing); }, "missing: steps");
  StateDict extra = sd;
  extra.emplace_back("bogus", zeros({1}));
  check_error([&] { n.load_state_dict(extra); }, "unexpected: bogus");
  n.load_state_dict(extra, /*strict=*/false);
  StateDict bad = sd;
  bad[0].second = zeros({4, 4});
  check_error([&] { n.load_state_dict(bad); }, "a.weight (expected [4, 3], got [4, 4])");

  // to() keeps identity: handles held elsewhere see the new dtype.
  Tensor w = m.a->weight;
  m.to(kFloat64);
  CHECK(w.dtype() == kFloat64);
  CHECK(m.state_dict()[0].second.dtype() == kFloat64);
  CHECK(m.steps.dtype() == kInt64);  // integer buffers keep their dtype
  m.train(false);
  CHECK(!m.a->is_training());
}

TEST_CASE("Linear, LayerNorm, Embedding, Dropout, MLP") {
  Generator g(1);
  Linear lin(3, 5, true, &g);
  Tensor x = randn({2, 4, 3}, kFloat32, &g);
  Tensor y = lin.forward(x);
  CHECK(y.shape() == Shape{2, 4, 5});
  check_close(y, add(matmul(x, lin.weight.t()), lin.bias), 1e-6, 1e-6);
  check_error([&] { lin.forward(zeros({2, 4})); }, "features");

  LayerNorm ln(5);
  check_close(ln.forward(y), layer_norm(y, ln.weight, ln.bias), 0, 0);

  Embedding emb(10, 4, &g);
  Tensor idx = from_vector<int64_t>({1, 9, 1}, {3});
  check_close(emb.forward(idx).select(0, 2), emb.weight.select(0, 1), 0, 0);

  Dropout drop(0.5, &g);
  Tensor ones_in = ones({1000});
  Tensor d = drop.forward(ones_in);
  double kept = sum(gt(d, 0.0).to(kFloat64)).item();
  CHECK(kept > 400);
  CHECK(kept < 600);
  drop.eval();
  check_close(drop.forward(ones_in), ones_in, 0, 0);

  MLP mlp(5, 8, 0.0, &g);
  CHECK(mlp.forward(y).shape() == y.shape());
  CHECK(mlp.num_parameters() == 5 * 8 + 8 + 8 * 5 + 5);
}

TEST_CASE("AFT layers: shapes, parameters, errors") {
  Generator g(2);
  const int64_t B = 2, T = 6, D = 8;
  Tensor x = randn({B, T, D}, kFloat32, &g);
  for (const char* variant : {"full", "local", "simple"}) {
    for (BiasKind kind : {BiasKind::Full, BiasKind::Factorized}) {
      CAPTURE(variant);
      MixerConfig c;
      c.variant = variant;
      c.max_len = 10;
      c.dim = D;
      c.window = 2;
      c.bias = {kind, 3};
      auto m = make_mixer(c, &g);
      Tensor y = m->forward(x);
      CHECK(y.shape() == x.shape());
      sum(y).backward();
      for (const NamedParam& p : m->named_parameters())
        CHECK_MESSAGE(p.tensor.grad().defined(), p.name);
      check_error([&] { m->forward(zeros({B, T, D + 1})); }, "expected input");
      if (std::string(variant) != "simple")
        check_error([&] { m->forward(zeros({1, 11, D})); }, "exceeds max_len");
    }
  }
  AFTLocal loc(10, D, 3, true, {BiasKind::Full, 0}, &g);
  CHECK(loc.band.shape() == Shape{10, 3});
  AFTFull full(10, D, false, {BiasKind::Factorized, 4}, &g);
  CHECK(full.u.shape() == Shape{10, 4});
  // Own parameters first, then the children's (as PyTorch orders them).
  CHECK(full.named_parameters()[0].name == "u");
  CHECK(full.named_parameters()[0].kind == ParamKind::PositionBias);
  CHECK(full.named_parameters()[2].name == "qkv.weight");
  check_error([] { make_mixer(MixerConfig{.variant = "nope"}); }, "unknown AFT variant");
  check_error([] { AFTConv(8, 3, 3); }, "must divide");
  check_error([] { AFTConv(8, 2, 4); }, "odd");
}

TEST_CASE("AFT layers compute what their parts compute") {
  Generator g(3);
  const int64_t B = 2, T = 5, D = 4;
  Tensor x = randn({B, T, D}, kFloat64, &g);
  AFTFull full(8, D, true, {BiasKind::Factorized, 3}, &g);
  full.to(kFloat64);
  Tensor qkv = full.qkv->forward(x);
  Tensor q = qkv.narrow(2, 0, D), k = qkv.narrow(2, D, D), v = qkv.narrow(2, 2 * D, D);
  Tensor w = matmul(full.u.narrow(0, 0, T), full.v.narrow(0, 0, T).t());
  check_close(full.forward(x), full.proj->forward(aft_full(q, k, v, w, true)), 1e-12, 1e-12);

  // AFTConv starts as AFT-simple over the image: gamma = beta = 0 make e^w - 1 = 0.
  AFTConv conv(D, 2, 3, &g);
  conv.to(kFloat64);
  Tensor img = randn({1, 3, 3, D}, kFloat64, &g);
  Tensor p = conv.qkv->forward(img);
  Tensor cq = p.narrow(3, 0, D), ck = p.narrow(3, D, 2), cv = p.narrow(3, D + 2, D);
  Tensor kfull = ck.unsqueeze(4).expand({1, 3, 3, 2, 2}).reshape({1, 3, 3, D});
  Tensor simple = aft_simple(cq.reshape({1, 9, D}), kfull.reshape({1, 9, D}), cv.reshape({1, 9, D}), false);
  check_close(conv.forward(img), conv.proj->forward(simple.reshape({1, 3, 3, D})), 1e-10, 1e-12);
  check_close(conv.kernel(), zeros({2, 3, 3}, kFloat64), 0, 0);
}

TEST_CASE("AFT layers and the block have correct gradients (float64, small)") {
  Generator g(4);
  const int64_t B = 2, T = 4, D = 4;
  Tensor x = randn({B, T, D}, kFloat64, &g);
  {
    // The layer's forward written out from its parameters (u, v, qkv.weight, qkv.bias,
    // proj.weight, proj.bias: own parameters first): equal to forward(), and gradchecked.
    AFTLocal m(6, D, 2, true, {BiasKind::Factorized, 2}, &g);
    m.to(kFloat64);
    auto f = [&](const std::vector<Tensor>& in) {
      Tensor qkv = add(matmul(x, in[2].t()), in[3]);
      Tensor q = qkv.narrow(2, 0, D), k = qkv.narrow(2, D, D), v = qkv.narrow(2, 2 * D, D);
      Tensor band = aft_band_bias(in[0].narrow(0, 0, T), in[1].narrow(0, 0, T), 2, true);
      return add(matmul(aft_local(q, k, v, band, 2, true), in[4].t()), in[5]);
    };
    check_close(m.forward(x), f(m.parameters()), 1e-12, 1e-12);
    check_gradcheck(f, m.parameters());
  }
  {
    // The module's own forward, differentiated through its parameters.
    auto block = std::make_shared<AFTBlock>(std::make_shared<AFTSimple>(D, true, &g), D, 8, 0.0, &g);
    block->to(kFloat64);
    Tensor xin = x.detach().requires_grad_();
    Tensor y = block->forward(xin);
    CHECK(y.shape() == x.shape());
    GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return block->forward(in[0]); }, {xin});
    CHECK_MESSAGE(r.ok, r.worst);
    sum(block->forward(x)).backward();
    for (const NamedParam& p : block->named_parameters()) CHECK_MESSAGE(p.tensor.grad().defined(), p.name);
  }
  {
    AFTConv conv(D, 2, 3, &g);
    conv.to(kFloat64);
    // Non-zero gamma/beta so the kernel path matters, then gradients of every parameter.
    init::normal_(conv.gamma, 0.0, 0.5, &g);
    init::normal_(conv.beta, 0.0, 0.5, &g);
    Tensor img = randn({1, 3, 4, D}, kFloat64, &g);
    // The forward written out from the parameters (w, gamma, beta, qkv.weight, qkv.bias,
    // proj.weight, proj.bias): equal to forward(), and gradchecked through the kernel
    // re-normalisation.
    auto f = [&](const std::vector<Tensor>& in) {
      Tensor p = add(matmul(img, in[3].t()), in[4]);
      Tensor cq = p.narrow(3, 0, D), ck = p.narrow(3, D, 2), cv = p.narrow(3, D + 2, D);
      Tensor mu = mean(in[0], {1, 2}, true);
      Tensor sd = sqrt(add(var(in[0], {1, 2}, true, 0), 1e-5));
      Tensor kern = add(mul(in[1].reshape({2, 1, 1}), div(sub(in[0], mu), sd)), in[2].reshape({2, 1, 1}));
      return add(matmul(aft_conv(cq, ck, cv, kern, 2), in[5].t()), in[6]);
    };
    check_close(conv.forward(img), f(conv.parameters()), 1e-12, 1e-12);
    check_gradcheck(f, conv.parameters());
  }
}

TEST_CASE("incremental decoding equals the full forward at every position") {
  Generator g(5);
  const int64_t B = 2, T = 9, D = 4;
  autograd::NoGradGuard ng;
  Tensor x = randn({B, T, D}, kFloat64, &g);
  for (const char* variant : {"simple", "local", "full"}) {
    for (BiasKind kind : {BiasKind::Full, BiasKind::Factorized}) {
      CAPTURE(variant);
      MixerConfig c{.variant = variant, .max_len = 12, .dim = D, .window = 3, .causal = true, .bias = {kind, 2}};
      auto block = std::make_shared<AFTBlock>(make_mixer(c, &g), D, 8, 0.0, &g);
      block->to(kFloat64);
      block->eval();
      // Large biases, so the window and the running sums weigh differently.
      for (const NamedParam& p : block->named_parameters())
        if (p.kind == ParamKind::PositionBias) init::normal_(p.tensor, 0.0, 2.0, &g);
      Tensor full = block->forward(x);
      DecodeState st;
      for (int64_t t = 0; t < T; ++t) {
        Tensor y = block->forward_step(x.select(1, t), st);
        check_close(y, full.select(1, t), 1e-10, 1e-12, "step");
      }
    }
  }
  AFTSimple nc(D, false, &g);
  DecodeState st;
  check_error([&] { nc.forward_step(zeros({B, D}), st); }, "causal");
}

TEST_CASE("AFTLM: shapes, config round trip, incremental decoding") {
  Generator g(6);
  AFTLMConfig c;
  c.vocab = 11;
  c.context = 10;
  c.dim = 8;
  c.layers = 2;
  c.mlp_hidden = 16;
  c.mixer.variant = "local";
  c.mixer.window = 3;
  c.mixer.bias = {BiasKind::Factorized, 4};
  c.period = 3;
  AFTLMConfig back = AFTLMConfig::from_json(c.to_json());
  CHECK(back.to_json() == c.to_json());
  check_error([] { AFTLMConfig::from_json(R"({"vocab": 3})"); }, "missing");
  for (bool tie : {false, true}) {
    c.tie_embeddings = tie;
    AFTLM lm(c, &g);
    lm.to(kFloat64);
    lm.eval();
    Tensor tokens = randint(0, 11, {2, 7}, kInt64, &g);
    Tensor logits = lm.forward(tokens);
    CHECK(logits.shape() == Shape{2, 7, 11});
    check_error([&] { lm.forward(randint(0, 11, {1, 11}, kInt64, &g)); }, "context");
    autograd::NoGradGuard ng;
    AFTLM::Decoder dec;
    for (int64_t t = 0; t < 7; ++t) {
      Tensor step = lm.forward_step(tokens.select(1, t), dec);
      check_close(step, logits.detach().select(1, t), 1e-10, 1e-12, "decode");
    }
  }
}
