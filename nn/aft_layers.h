// nn/aft_layers.h: the AFT layers of the paper, and the pre-norm transformer block around them.
//
// Every layer maps x [B, T, D] (AFTConv: an image [B, H, W, C]) to the same shape:
//   q, k, v = one fused Linear of x      (AFTConv: k has one channel per head)
//   y       = aft_<variant>(q, k, v, position bias)      (ops/aft_*.cpp)
//   out     = Linear(y)
// Position biases (ParamKind::PositionBias, so no weight decay by default):
//   AFTFull   full: w [max_len, max_len];     factorised: w = u·vᵀ, u, v [max_len, d']
//   AFTLocal  full: the band [max_len, 2W−1] (causal [max_len, W]);  factorised: the band of u·vᵀ
//   AFTConv   a raw kernel per head [heads, s, s], re-normalised per head as
//             γ·(w − mean(w)) / std(w) + β with γ = β = 0 at the start, so the layer starts as
//             AFT-simple (e^0 − 1 = 0: no local term).
// Initialisation (the paper's): u, v and full biases N(0, 0.01²); projections N(0, 0.02²).
// Biases serve any T <= max_len (the first T rows/columns).
#pragma once

#include <memory>
#include <string>

#include "nn/layers.h"

namespace aft::nn {

// A layer that mixes information across positions: x [B, T, D] -> [B, T, D].
class SequenceMixer : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& x) const = 0;
};

enum class BiasKind { Full, Factorized };
struct BiasConfig {
  BiasKind kind = BiasKind::Factorized;
  int64_t dim = 64;  // d' of the factorisation
};

class AFTFull : public SequenceMixer {
 public:
  AFTFull(int64_t max_len, int64_t dim, bool causal, BiasConfig bias = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const override;
  Tensor position_bias(int64_t T) const;  // w [T, T]
  int64_t max_len, dim;
  bool causal;
  BiasConfig bias;
  std::shared_ptr<Linear> qkv, proj;
  Tensor w, u, v;  // w when full; u, v when factorised
};

class AFTLocal : public SequenceMixer {
 public:
  AFTLocal(int64_t max_len, int64_t dim, int64_t window, bool causal, BiasConfig bias = {},
           Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const override;
  Tensor position_band(int64_t T) const;  // [T, 2W−1] or causal [T, W]
  int64_t max_len, dim, window;
  bool causal;
  BiasConfig bias;
  std::shared_ptr<Linear> qkv, proj;
  Tensor band, u, v;  // band when full; u, v when factorised
};

class AFTSimple : public SequenceMixer {
 public:
  AFTSimple(int64_t dim, bool causal, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const override;
  int64_t dim;
  bool causal;
  std::shared_ptr<Linear> qkv, proj;
};

// On images x [B, H, W, C] (channels last); C must be divisible by heads.
class AFTConv : public SequenceMixer {
 public:
  AFTConv(int64_t dim, int64_t heads, int64_t kernel_size, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const override;
  Tensor kernel() const;  // the re-normalised kernel [heads, s, s]
  int64_t dim, heads, kernel_size;
  std::shared_ptr<Linear> qkv, proj;  // qkv: D -> D (q) + heads (k) + D (v)
  Tensor w, gamma, beta;             // [heads, s, s], [heads], [heads]
};

// Which mixer, with every size it may need; make_mixer builds it.
struct MixerConfig {
  std::string variant = "local";  // full | local | simple | conv
  int64_t max_len = 1024;
  int64_t dim = 256;
  int64_t window = 32;       // local
  bool causal = true;        // full, local, simple
  BiasConfig bias;           // full, local
  int64_t heads = 8;         // conv
  int64_t kernel_size = 7;   // conv
};
std::shared_ptr<SequenceMixer> make_mixer(const MixerConfig& cfg, Generator* gen = nullptr);

// Pre-norm residual block: x = x + drop(mixer(LN(x))); x = x + mlp(LN(x)) (mlp ends in dropout).
class AFTBlock : public Module {
 public:
  AFTBlock(std::shared_ptr<SequenceMixer> mixer, int64_t dim, int64_t mlp_hidden, double dropout = 0.0,
           Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<SequenceMixer> mixer;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<MLP> mlp;
};

}  // namespace aft::nn
