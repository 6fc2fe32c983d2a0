// examples/imagenet/model.h: the AFT image classifier of the paper's §5.3 (AFT-conv), and the
// AFT-full variant with a class token, with stochastic depth.
//
// AFT-conv (variant "conv"), images x [B, S, S, 3] -> logits [B, classes]:
//   patches  [B, S/p, p, S/p, p, 3] -> [B, h, w, p·p·3]   (h = w = S/p; a strided p×p
//            convolution with stride p is exactly a Linear on these patch vectors)
//   x = Linear(patches)                                    [B, h, w, D]; no class token and no
//                                                          position embedding
//   x = AFTBlock_L(... AFTBlock_1(x))                      pre-LN, AFTConv(heads, kernel), ×4
//                                                          GELU MLP, stochastic depth
//   logits = head(LN(mean over h, w of x))                 global average pooling
// Nothing depends on S but the patch size: the same weights run at any S divisible by p
// (the paper evaluates at 384 a model trained at 224).
//
// AFT-full (variant "full", for comparison): tokens [B, N, D] (N = h·w) with a learned class
// token prepended and learned position embeddings [N + 1, D] added, non-causal AFTFull blocks
// (position bias full [N+1, N+1] or factorised), logits = head(LN(class token)). Runs only at
// the training size (the embeddings are per position).
//
// Stochastic depth (Huang et al. 2016; DeiT): while training, each residual branch of block i
// (of L) is dropped for a whole sample with probability p_i = drop_path·i/(L−1), and kept
// branches are scaled by 1/(1 − p_i) so the expectation is unchanged:
//   x = x + m_b·branch(x) / (1 − p),  m_b ~ Bernoulli(1 − p) per sample b
// drop_path() is that op: a product with a per-sample constant, so its backward is the same
// product (dx = m_b·dy / (1 − p)). The masks come from the generator given to the model (the
// trainer's, so resuming is exact).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/aft_layers.h"
#include "nn/run/json.h"

namespace aft::imagenet {

struct ModelConfig {
  std::string variant = "conv";  // conv | full
  int64_t image_size = 64;       // training size S (S % patch == 0)
  int64_t patch = 8;
  int64_t dim = 128;
  int64_t layers = 4;
  int64_t heads = 8;             // conv: heads of AFTConv (divides dim)
  int64_t kernel = 7;            // conv: kernel size s (odd)
  int64_t mlp_ratio = 4;         // MLP hidden width = mlp_ratio · dim
  int64_t classes = 10;
  double drop_path = 0.1;        // stochastic depth of the last block
  std::string bias = "full";     // full: AFT-full's position bias, full | factorized
  int64_t bias_dim = 64;         // full: d' of a factorised bias

  int64_t grid() const { return image_size / patch; }
  void check() const;  // aft::Error on an inconsistent configuration
  std::string to_json() const;
  static ModelConfig from_json(const json::Value& v);
};

// x [B, ...] -> x with each sample's values kept with probability 1 − p (scaled by 1/(1 − p))
// or zeroed; identity when !training or p == 0. gen: the default generator when null.
Tensor drop_path(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// images [B, H, W, 3] -> [B, H/p, W/p, p·p·3] (patch vectors ordered (row, column, channel)).
Tensor patchify(const Tensor& images, int64_t patch);

class ImageAFT : public nn::Module {
 public:
  // init: initialisation (nullptr: the default generator); drop_gen: stochastic-depth masks.
  ImageAFT(const ModelConfig& cfg, Generator* init = nullptr, Generator* drop_gen = nullptr);
  // images [B, H, W, 3] float (H, W divisible by the patch size; AFT-full: H = W = image_size)
  // -> logits [B, classes]
  Tensor forward(const Tensor& images) const;
  const ModelConfig& config() const { return cfg_; }
  double drop_rate(int64_t block) const;  // p_i

  std::shared_ptr<nn::Linear> patch_embed, head;
  std::vector<std::shared_ptr<nn::AFTBlock>> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  Tensor cls_token, pos_embed;  // AFT-full only: [1, 1, D], [N + 1, D]

 private:
  Tensor block_forward(const nn::AFTBlock& b, const Tensor& x, double p) const;
  ModelConfig cfg_;
  Generator* drop_gen_;
};

}  // namespace aft::imagenet
