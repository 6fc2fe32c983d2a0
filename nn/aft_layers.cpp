// nn/aft_layers.cpp: AFTFull, AFTLocal, AFTSimple, AFTConv, make_mixer, AFTBlock.
#include "nn/aft_layers.h"

#include "core/format.h"
#include "nn/init.h"

namespace aft::nn {

namespace {

// q, k, v as views of the fused projection [.., 3D] (k of width dk).
struct QKV {
  Tensor q, k, v;
};
QKV split_qkv(const Tensor& qkv, int64_t d, int64_t dk) {
  std::vector<Tensor> parts = split(qkv, std::vector<int64_t>{d, dk, d}, -1);
  return {parts[0], parts[1], parts[2]};
}

void check_seq(const char* layer, const Tensor& x, int64_t dim, int64_t max_len) {
  AFT_CHECK(x.defined() && x.ndim() == 3 && x.size(2) == dim,
            "{}: expected input [B, T, {}], got {}", layer, dim, x.defined() ? x.shape() : Shape{});
  AFT_CHECK(max_len < 0 || x.size(1) <= max_len,
            "{}: sequence length {} exceeds max_len {}", layer, x.size(1), max_len);
}

void init_bias(const Tensor& t, Generator* gen) { init::normal_(t, 0.0, init::kPositionBiasStd, gen); }

}  // namespace

// ---- AFTFull

AFTFull::AFTFull(int64_t L, int64_t d, bool c, BiasConfig b, Generator* gen)
    : SequenceMixer("AFTFull"), max_len(L), dim(d), causal(c), bias(b) {
  AFT_CHECK(L > 0 && d > 0 && (b.kind == BiasKind::Full || b.dim > 0),
            "AFTFull: need max_len, dim and bias dim > 0, got {}, {}, {}", L, d, b.dim);
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, gen));
  if (b.kind == BiasKind::Full) {
    w = register_parameter("w", empty({L, L}), ParamKind::PositionBias);
    init_bias(w, gen);
  } else {
    u = register_parameter("u", empty({L, b.dim}), ParamKind::PositionBias);
    v = register_parameter("v", empty({L, b.dim}), ParamKind::PositionBias);
    init_bias(u, gen);
    init_bias(v, gen);
  }
}

Tensor AFTFull::position_bias(int64_t T) const {
  if (bias.kind == BiasKind::Full) return w.narrow(0, 0, T).narrow(1, 0, T);
  return matmul(u.narrow(0, 0, T), v.narrow(0, 0, T).t());
}

Tensor AFTFull::forward(const Tensor& x) const {
  check_seq("AFTFull", x, dim, max_len);
  QKV p = split_qkv(qkv->forward(x), dim, dim);
  return proj->forward(aft_full(p.q, p.k, p.v, position_bias(x.size(1)), causal));
}

// ---- AFTLocal

AFTLocal::AFTLocal(int64_t L, int64_t d, int64_t W, bool c, BiasConfig b, Generator* gen)
    : SequenceMixer("AFTLocal"), max_len(L), dim(d), window(W), causal(c), bias(b) {
  AFT_CHECK(L > 0 && d > 0 && W >= 1 && (b.kind == BiasKind::Full || b.dim > 0),
            "AFTLocal: need max_len, dim, window and bias dim > 0, got {}, {}, {}, {}", L, d, W, b.dim);
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, gen));
  if (b.kind == BiasKind::Full) {
    band = register_parameter("band", empty({L, c ? W : 2 * W - 1}), ParamKind::PositionBias);
    init_bias(band, gen);
  } else {
    u = register_parameter("u", empty({L, b.dim}), ParamKind::PositionBias);
    v = register_parameter("v", empty({L, b.dim}), ParamKind::PositionBias);
    init_bias(u, gen);
    init_bias(v, gen);
  }
}

Tensor AFTLocal::position_band(int64_t T) const {
  if (bias.kind == BiasKind::Full) return band.narrow(0, 0, T);
  return aft_band_bias(u.narrow(0, 0, T), v.narrow(0, 0, T), window, causal);
}

Tensor AFTLocal::forward(const Tensor& x) const {
  check_seq("AFTLocal", x, dim, max_len);
  QKV p = split_qkv(qkv->forward(x), dim, dim);
  return proj->forward(aft_local(p.q, p.k, p.v, position_band(x.size(1)), window, causal));
}

// ---- AFTSimple

AFTSimple::AFTSimple(int64_t d, bool c, Generator* gen) : SequenceMixer("AFTSimple"), dim(d), causal(c) {
  AFT_CHECK(d > 0, "AFTSimple: dim must be positive, got {}", d);
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, gen));
}

Tensor AFTSimple::forward(const Tensor& x) const {
  check_seq("AFTSimple", x, dim, -1);
  QKV p = split_qkv(qkv->forward(x), dim, dim);
  return proj->forward(aft_simple(p.q, p.k, p.v, causal));
}

// ---- AFTConv

AFTConv::AFTConv(int64_t d, int64_t h, int64_t s, Generator* gen)
    : SequenceMixer("AFTConv"), dim(d), heads(h), kernel_size(s) {
  AFT_CHECK(d > 0 && h > 0 && d % h == 0, "AFTConv: heads ({}) must divide dim ({})", h, d);
  AFT_CHECK(s >= 1 && s % 2 == 1, "AFTConv: kernel_size must be odd and positive, got {}", s);
  qkv = register_module("qkv", std::make_shared<Linear>(d, 2 * d + h, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, gen));
  // The raw kernel needs a spread for its standardisation; its scale does not matter.
  w = register_parameter("w", empty({h, s, s}), ParamKind::PositionBias);
  init::normal_(w, 0.0, 1.0, gen);
  gamma = register_parameter("gamma", zeros({h}), ParamKind::PositionBias);
  beta = register_parameter("beta", zeros({h}), ParamKind::PositionBias);
}

Tensor AFTConv::kernel() const {
  // γ·(w − mean)/std + β per head; std with a small floor so a 1×1 kernel stays finite.
  Tensor mu = mean(w, {1, 2}, true);
  Tensor sd = sqrt(add(var(w, {1, 2}, true, 0), 1e-5));
  Tensor g = gamma.reshape({heads, 1, 1}), b = beta.reshape({heads, 1, 1});
  return add(mul(g, div(sub(w, mu), sd)), b);
}

Tensor AFTConv::forward(const Tensor& x) const {
  AFT_CHECK(x.defined() && x.ndim() == 4 && x.size(3) == dim,
            "AFTConv: expected an image [B, H, W, {}], got {}", dim, x.defined() ? x.shape() : Shape{});
  QKV p = split_qkv(qkv->forward(x), dim, heads);
  return proj->forward(aft_conv(p.q, p.k, p.v, kernel(), heads));
}

// ---- factory and block

std::shared_ptr<SequenceMixer> make_mixer(const MixerConfig& c, Generator* gen) {
  if (c.variant == "full") return std::make_shared<AFTFull>(c.max_len, c.dim, c.causal, c.bias, gen);
  if (c.variant == "local")
    return std::make_shared<AFTLocal>(c.max_len, c.dim, c.window, c.causal, c.bias, gen);
  if (c.variant == "simple") return std::make_shared<AFTSimple>(c.dim, c.causal, gen);
  if (c.variant == "conv") return std::make_shared<AFTConv>(c.dim, c.heads, c.kernel_size, gen);
  AFT_ERROR("make_mixer: unknown AFT variant '{}' (expected full, local, simple or conv)", c.variant);
}

AFTBlock::AFTBlock(std::shared_ptr<SequenceMixer> m, int64_t d, int64_t hidden, double p, Generator* gen)
    : Module("AFTBlock") {
  AFT_CHECK(m != nullptr, "AFTBlock: no mixer given");
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(d));
  mixer = register_module("mixer", std::move(m));
  drop = register_module("drop", std::make_shared<Dropout>(p, gen));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(d));
  mlp = register_module("mlp", std::make_shared<MLP>(d, hidden, p, gen));
}

Tensor AFTBlock::forward(const Tensor& x) const {
  Tensor h = add(x, drop->forward(mixer->forward(ln1->forward(x))));
  return add(h, mlp->forward(ln2->forward(h)));
}

}  // namespace aft::nn
