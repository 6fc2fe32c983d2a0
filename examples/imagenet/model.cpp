// examples/imagenet/model.cpp: ImageAFT, its configuration, patchify and drop_path (model.h).
#include "model.h"

#include "autograd/tape.h"
#include "core/format.h"
#include "nn/init.h"

namespace aft::imagenet {

void ModelConfig::check() const {
  AFT_CHECK(variant == "conv" || variant == "full", "model: variant must be conv or full, got '{}'", variant);
  AFT_CHECK(patch >= 1 && image_size >= patch && image_size % patch == 0,
            "model: the image size ({}) must be a positive multiple of the patch size ({})", image_size, patch);
  AFT_CHECK(dim >= 1 && layers >= 1 && mlp_ratio >= 1 && classes >= 2,
            "model: need dim, layers, mlp ratio >= 1 and classes >= 2, got {}, {}, {}, {}", dim, layers, mlp_ratio, classes);
  AFT_CHECK(drop_path >= 0 && drop_path < 1, "model: drop_path must be in [0, 1), got {}", drop_path);
  if (variant == "conv") {
    AFT_CHECK(heads >= 1 && dim % heads == 0, "model: heads ({}) must divide dim ({})", heads, dim);
    AFT_CHECK(kernel >= 1 && kernel % 2 == 1, "model: the kernel size must be odd, got {}", kernel);
  } else {
    AFT_CHECK(bias == "full" || bias == "factorized", "model: bias must be full or factorized, got '{}'", bias);
    AFT_CHECK(bias == "full" || bias_dim >= 1, "model: bias_dim must be >= 1, got {}", bias_dim);
  }
}

std::string ModelConfig::to_json() const {
  return fmt::format(
      "{{\"variant\": {}, \"image_size\": {}, \"patch\": {}, \"dim\": {}, \"layers\": {}, \"heads\": {}, "
      "\"kernel\": {}, \"mlp_ratio\": {}, \"classes\": {}, \"drop_path\": {}, \"bias\": {}, \"bias_dim\": {}}}",
      json::quote(variant), image_size, patch, dim, layers, heads, kernel, mlp_ratio, classes, drop_path,
      json::quote(bias), bias_dim);
}

ModelConfig ModelConfig::from_json(const json::Value& v) {
  AFT_CHECK(v.is_object(), "model config: expected a JSON object");
  ModelConfig c;
  auto num = [&](const char* key) {
    const json::Value* m = v.find(key);
    AFT_CHECK(m && m->is_number(), "model config: missing number '{}'", key);
    return std::stod(m->text);
  };
  auto str = [&](const char* key) {
    const json::Value* m = v.find(key);
    AFT_CHECK(m && m->is_string(), "model config: missing string '{}'", key);
    return m->text;
  };
  c.variant = str("variant");
  c.image_size = static_cast<int64_t>(num("image_size"));
  c.patch = static_cast<int64_t>(num("patch"));
  c.dim = static_cast<int64_t>(num("dim"));
  c.layers = static_cast<int64_t>(num("layers"));
  c.heads = static_cast<int64_t>(num("heads"));
  c.kernel = static_cast<int64_t>(num("kernel"));
  c.mlp_ratio = static_cast<int64_t>(num("mlp_ratio"));
  c.classes = static_cast<int64_t>(num("classes"));
  c.drop_path = num("drop_path");
  c.bias = str("bias");
  c.bias_dim = static_cast<int64_t>(num("bias_dim"));
  c.check();
  return c;
}

Tensor drop_path(const Tensor& x, double p, bool training, Generator* gen) {
  AFT_CHECK(p >= 0 && p < 1, "drop_path: p must be in [0, 1), got {}", p);
  AFT_CHECK(x.defined() && x.ndim() >= 1, "drop_path: expected a tensor [B, ...], got {}", x.defined() ? x.shape() : Shape{});
  if (!training || p == 0 || x.numel() == 0) return x;
  const int64_t B = x.size(0);
  // mask_b = [u_b >= p] / (1 − p), u_b ~ U[0, 1): one draw per sample, broadcast over the rest.
  std::vector<int64_t> mshape(static_cast<size_t>(x.ndim()), 1);
  mshape[0] = B;
  Tensor u = rand({B}, TensorOptions(x.dtype(), x.device()), gen);
  Tensor mask = mul(ge(u, p).to(x.dtype()), 1.0 / (1.0 - p)).reshape(Shape(mshape));
  return mul(x, mask);
}

Tensor patchify(const Tensor& images, int64_t p) {
  AFT_CHECK(images.defined() && images.ndim() == 4 && images.size(3) == 3 && p >= 1 && images.size(1) % p == 0 &&
                images.size(2) % p == 0 && images.size(1) > 0 && images.size(2) > 0,
            "patchify: expected images [B, H, W, 3] with H and W multiples of the patch size {}, got {}", p,
            images.defined() ? images.shape() : Shape{});
  const int64_t B = images.size(0), h = images.size(1) / p, w = images.size(2) / p;
  return images.reshape({B, h, p, w, p, 3}).permute({0, 1, 3, 2, 4, 5}).reshape({B, h, w, p * p * 3});
}

ImageAFT::ImageAFT(const ModelConfig& cfg, Generator* init, Generator* drop_gen)
    : Module("ImageAFT"), cfg_(cfg), drop_gen_(drop_gen) {
  cfg.check();
  const int64_t D = cfg.dim, N = cfg.grid() * cfg.grid();
  patch_embed = register_module("patch_embed", std::make_shared<nn::Linear>(cfg.patch * cfg.patch * 3, D, true, init));
  if (cfg.variant == "full") {
    cls_token = register_parameter("cls_token", empty({1, 1, D}), nn::ParamKind::Embedding);
    pos_embed = register_parameter("pos_embed", empty({N + 1, D}), nn::ParamKind::PositionBias);
    nn::init::normal_(cls_token, 0.0, nn::init::kProjectionStd, init);
    nn::init::normal_(pos_embed, 0.0, nn::init::kProjectionStd, init);
  }
  for (int64_t i = 0; i < cfg.layers; ++i) {
    nn::MixerConfig m;
    m.dim = D;
    if (cfg.variant == "conv") {
      m.variant = "conv";
      m.heads = cfg.heads;
      m.kernel_size = cfg.kernel;
    } else {
      m.variant = "full";
      m.max_len = N + 1;
      m.causal = false;
      m.bias = {cfg.bias == "full" ? nn::BiasKind::Full : nn::BiasKind::Factorized, cfg.bias_dim};
    }
    blocks.push_back(register_module(fmt::format("blocks{}", i),
                                     std::make_shared<nn::AFTBlock>(nn::make_mixer(m, init), D, cfg.mlp_ratio * D, 0.0, init)));
  }
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(D));
  head = register_module("head", std::make_shared<nn::Linear>(D, cfg.classes, true, init));
}

double ImageAFT::drop_rate(int64_t i) const {
  return cfg_.layers <= 1 ? 0.0 : cfg_.drop_path * static_cast<double>(i) / static_cast<double>(cfg_.layers - 1);
}

// AFTBlock::forward with a drop_path on each residual branch:
//   h = x + drop_path(mixer(LN1(x)));  out = h + drop_path(mlp(LN2(h)))
Tensor ImageAFT::block_forward(const nn::AFTBlock& b, const Tensor& x, double p) const {
  if (!is_training() || p == 0) return b.forward(x);
  Tensor h = add(x, drop_path(b.drop->forward(b.mixer->forward(b.ln1->forward(x))), p, true, drop_gen_));
  return add(h, drop_path(b.mlp->forward(b.ln2->forward(h)), p, true, drop_gen_));
}

Tensor ImageAFT::forward(const Tensor& images) const {
  Tensor x = patch_embed->forward(patchify(images, cfg_.patch));  // [B, h, w, D]
  const int64_t B = x.size(0), D = cfg_.dim;
  if (cfg_.variant == "full") {
    AFT_CHECK(images.size(1) == cfg_.image_size && images.size(2) == cfg_.image_size,
              "ImageAFT: AFT-full runs only at its training size {}x{} (learned position embeddings), got {}x{}",
              cfg_.image_size, cfg_.image_size, images.size(1), images.size(2));
    x = x.reshape({B, -1, D});
    x = add(cat({cls_token.expand({B, 1, D}), x}, 1), pos_embed);  // [B, N + 1, D]
  }
  for (size_t i = 0; i < blocks.size(); ++i) x = block_forward(*blocks[i], x, drop_rate(static_cast<int64_t>(i)));
  Tensor pooled = cfg_.variant == "full" ? x.select(1, 0) : mean(x, {1, 2});  // [B, D]
  return head->forward(norm->forward(pooled));
}

}  // namespace aft::imagenet
