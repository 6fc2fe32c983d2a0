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

// Incremental decoding state of one causal layer for a batch of B sequences, after `t`
// positions. Keys and values of the positions still needed are kept in [B, max_len, D]
// buffers; keys that no longer need their own weight (AFT-simple: all of them; AFT-local: those
// older than the window, whose bias is 0) are folded into running sums scaled by e^{-m}:
//   num = Σ e^{k - m}·v,  den = Σ e^{k - m},  m = the running maximum of k   (each [B, D])
struct DecodeState {
  int64_t t = 0;
  Tensor keys, values;    // [B, max_len, D] (AFTFull, AFTLocal)
  Tensor num, den, m;     // [B, D] running prefix sums (AFTLocal, AFTSimple)
};

// A layer that mixes information across positions: x [B, T, D] -> [B, T, D].
class SequenceMixer : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& x) const = 0;
  // Causal layers: the output at the next position from that position's input x_t [B, D],
  // reusing what `state` holds of the earlier positions instead of recomputing them. Equal (up
  // to rounding) to forward() on the whole prefix, at its last position. Call under NoGradGuard.
  virtual Tensor forward_step(const Tensor& x_t, DecodeState& state) const;
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
  Tensor forward_step(const Tensor& x_t, DecodeState& state) const override;
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
  Tensor forward_step(const Tensor& x_t, DecodeState& state) const override;
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
  Tensor forward_step(const Tensor& x_t, DecodeState& state) const override;
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
  // One position, x_t [B, D] (causal mixers only; see SequenceMixer::forward_step).
  Tensor forward_step(const Tensor& x_t, DecodeState& state) const;
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<SequenceMixer> mixer;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<MLP> mlp;
};

}  // namespace aft::nn
