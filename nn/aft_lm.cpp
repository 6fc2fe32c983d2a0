// nn/aft_lm.cpp: AFTLM and its configuration (see aft_lm.h).
#include "nn/aft_lm.h"

#include "autograd/tape.h"
#include "core/format.h"
#include "nn/init.h"
#include "nn/run/json.h"

namespace aft::nn {

std::string AFTLMConfig::to_json() const {
  return fmt::format(
      "{{\"vocab\": {}, \"context\": {}, \"dim\": {}, \"layers\": {}, \"mlp_hidden\": {}, "
      "\"variant\": {}, \"window\": {}, \"bias\": {}, \"bias_dim\": {}, \"heads\": {}, "
      "\"kernel_size\": {}, \"dropout\": {}, \"tie_embeddings\": {}, \"period\": {}}}",
      vocab, context, dim, layers, mlp_hidden, json::quote(mixer.variant), mixer.window,
      json::quote(mixer.bias.kind == BiasKind::Full ? "full" : "factorized"), mixer.bias.dim,
      mixer.heads, mixer.kernel_size, dropout, tie_embeddings ? "true" : "false", period);
}

AFTLMConfig AFTLMConfig::from_json(const std::string& text) {
  return from_json(json::parse(text, "model config"));
}

AFTLMConfig AFTLMConfig::from_json(const json::Value& v) {
  AFT_CHECK(v.is_object(), "model config: expected a JSON object");
  AFTLMConfig c;
  auto num = [&](const char* key, auto* out) {
    const json::Value* m = v.find(key);
    AFT_CHECK(m && m->is_number(), "model config: missing number '{}'", key);
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(std::stod(m->text));
  };
  auto str = [&](const char* key) {
    const json::Value* m = v.find(key);
    AFT_CHECK(m && m->is_string(), "model config: missing string '{}'", key);
    return m->text;
  };
  num("vocab", &c.vocab);
  num("context", &c.context);
  num("dim", &c.dim);
  num("layers", &c.layers);
  num("mlp_hidden", &c.mlp_hidden);
  c.mixer.variant = str("variant");
  num("window", &c.mixer.window);
  std::string bias = str("bias");
  AFT_CHECK(bias == "full" || bias == "factorized", "model config: bias must be full or factorized, got '{}'", bias);
  c.mixer.bias.kind = bias == "full" ? BiasKind::Full : BiasKind::Factorized;
  num("bias_dim", &c.mixer.bias.dim);
  num("heads", &c.mixer.heads);
  num("kernel_size", &c.mixer.kernel_size);
  num("dropout", &c.dropout);
  const json::Value* tie = v.find("tie_embeddings");
  AFT_CHECK(tie && tie->kind == json::Value::Kind::Bool, "model config: missing bool 'tie_embeddings'");
  c.tie_embeddings = tie->boolean;
  num("period", &c.period);
  return c;
}

AFTLM::AFTLM(const AFTLMConfig& cfg, Generator* gen) : Module("AFTLM"), cfg_(cfg) {
  AFT_CHECK(cfg.vocab > 0 && cfg.context > 0 && cfg.dim > 0 && cfg.layers > 0 && cfg.mlp_hidden > 0 &&
                cfg.period >= 0,
            "AFTLM: sizes must be positive (vocab {}, context {}, dim {}, layers {}, mlp_hidden {})",
            cfg.vocab, cfg.context, cfg.dim, cfg.layers, cfg.mlp_hidden);
  AFT_CHECK(cfg.mixer.variant != "conv", "AFTLM: the conv variant is for images, not sequences");
  tok_ = register_module("tok_emb", std::make_shared<Embedding>(cfg.vocab, cfg.dim, gen));
  pos_ = register_parameter("pos_emb", empty({cfg.context, cfg.dim}), ParamKind::Embedding);
  init::normal_(pos_, 0.0, init::kProjectionStd, gen);
  if (cfg.period > 0) {
    chan_ = register_parameter("chan_emb", empty({cfg.period, cfg.dim}), ParamKind::Embedding);
    init::normal_(chan_, 0.0, init::kProjectionStd, gen);
  }
  drop_ = register_module("drop", std::make_shared<Dropout>(cfg.dropout, gen));
  MixerConfig mc = cfg.mixer;
  mc.dim = cfg.dim;
  mc.max_len = cfg.context;
  mc.causal = true;
  for (int64_t i = 0; i < cfg.layers; ++i)
    blocks_.push_back(register_module(
        "blocks" + std::to_string(i),
        std::make_shared<AFTBlock>(make_mixer(mc, gen), cfg.dim, cfg.mlp_hidden, cfg.dropout, gen)));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(cfg.dim));
  if (!cfg.tie_embeddings) head_ = register_module("head", std::make_shared<Linear>(cfg.dim, cfg.vocab, true, gen));
}

Tensor AFTLM::embed(const Tensor& tokens, int64_t t0, int64_t T) const {
  Tensor h = add(tok_->forward(tokens), pos_.narrow(0, t0, T));
  if (cfg_.period > 0) {
    // Row (t mod period) of chan_emb for t = t0..t0+T-1: the table repeated, then a window.
    const int64_t P = cfg_.period, first = t0 % P, reps = (first + T + P - 1) / P;
    Tensor tiled = chan_.unsqueeze(0).expand({reps, P, cfg_.dim}).reshape({reps * P, cfg_.dim});
    h = add(h, tiled.narrow(0, first, T));
  }
  return h;
}

Tensor AFTLM::logits(const Tensor& h) const {
  Tensor n = ln_f_->forward(h);
  return head_ ? head_->forward(n) : matmul(n, tok_->weight.t());
}

Tensor AFTLM::forward(const Tensor& tokens) const {
  AFT_CHECK(tokens.defined() && tokens.ndim() == 2 && tokens.dtype() == kInt64,
            "AFTLM: expected int64 tokens [B, T], got {} {}", tokens.defined() ? tokens.dtype() : kInt64,
            tokens.defined() ? tokens.shape() : Shape{});
  const int64_t T = tokens.size(1);
  AFT_CHECK(T >= 1 && T <= cfg_.context, "AFTLM: sequence length {} is not in [1, context = {}]", T, cfg_.context);
  Tensor h = drop_->forward(embed(tokens, 0, T));
  for (const auto& b : blocks_) h = b->forward(h);
  return logits(h);
}

Tensor AFTLM::forward_step(const Tensor& tokens, Decoder& dec) const {
  AFT_CHECK(!autograd::grad_enabled(), "AFTLM: forward_step runs under NoGradGuard");
  AFT_CHECK(tokens.defined() && tokens.ndim() == 1 && tokens.dtype() == kInt64,
            "AFTLM: forward_step expects int64 tokens [B], got {}", tokens.defined() ? tokens.shape() : Shape{});
  AFT_CHECK(dec.t < cfg_.context, "AFTLM: position {} is past the context length {}", dec.t, cfg_.context);
  if (dec.layers.empty()) dec.layers.resize(blocks_.size());
  Tensor h = embed(tokens.unsqueeze(1), dec.t, 1).squeeze(1);
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i]->forward_step(h, dec.layers[i]);
  ++dec.t;
  return logits(h);
}

}  // namespace aft::nn
