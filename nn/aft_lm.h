// nn/aft_lm.h: AFTLM, an autoregressive model over a sequence of discrete symbols: the
// character LM of examples/enwik8 (bytes) and the image model of examples/cifar10 (sub-pixel
// intensities). After Image GPT and the AFT paper:
//
//   h = tok_emb[x] + pos_emb[t] (+ chan_emb[t mod period])      x [B, T] int64 -> [B, T, D]
//   h = AFTBlock_L(...AFTBlock_1(h))                              causal AFT mixers
//   logits = head(LN(h))   (head tied to tok_emb when tie_embeddings)   -> [B, T, vocab]
//
// forward() runs whole sequences (training, evaluation); forward_step() one position at a time
// with the layers' running sums (sampling), equal to forward() at that position.
#pragma once

#include <string>
#include <vector>

#include "nn/aft_layers.h"
#include "nn/run/json.h"

namespace aft::nn {

struct AFTLMConfig {
  int64_t vocab = 256;
  int64_t context = 512;     // longest sequence (size of the position embedding)
  int64_t dim = 256;
  int64_t layers = 4;
  int64_t mlp_hidden = 1024;
  MixerConfig mixer;         // variant, window, bias; dim, max_len and causal are set from here
  double dropout = 0.0;
  bool tie_embeddings = false;
  int64_t period = 0;        // > 0: add an embedding of (position mod period), e.g. RGB channel

  std::string to_json() const;
  static AFTLMConfig from_json(const std::string& text);  // aft::Error on a bad config
  static AFTLMConfig from_json(const json::Value& v);
};

class AFTLM : public Module {
 public:
  explicit AFTLM(const AFTLMConfig& cfg, Generator* gen = nullptr);

  // tokens [B, T] int64 with T <= context -> logits [B, T, vocab]
  Tensor forward(const Tensor& tokens) const;

  struct Decoder {
    std::vector<DecodeState> layers;
    int64_t t = 0;  // positions consumed
  };
  // tokens [B] int64 at position dec.t -> logits [B, vocab] for position dec.t + 1. Run in eval
  // mode under NoGradGuard.
  Tensor forward_step(const Tensor& tokens, Decoder& dec) const;

  const AFTLMConfig& config() const { return cfg_; }

 private:
  Tensor embed(const Tensor& tokens, int64_t t0, int64_t T) const;  // [B, T] -> [B, T, D]
  Tensor logits(const Tensor& h) const;

  AFTLMConfig cfg_;
  std::shared_ptr<Embedding> tok_;
  Tensor pos_, chan_;  // [context, D], [period, D]
  std::vector<std::shared_ptr<AFTBlock>> blocks_;
  std::shared_ptr<Dropout> drop_;
  std::shared_ptr<LayerNorm> ln_f_;
  std::shared_ptr<Linear> head_;  // null when tied
};

}  // namespace aft::nn
