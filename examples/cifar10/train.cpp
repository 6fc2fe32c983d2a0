// examples/cifar10/train.cpp: model configuration, optimizer and training batch (see train.h).
#include "train.h"

#include <algorithm>

#include "../common/lm_run.h"
#include "bpd.h"
#include "core/format.h"
#include "ops/ops.h"

namespace aft::cifar10 {

nn::AFTLMConfig image_model_config(const ModelOptions& m) {
  nn::AFTLMConfig c;
  c.vocab = kVocab;
  c.context = kDims;
  c.dim = m.dim;
  c.layers = m.layers;
  c.mlp_hidden = m.mlp_hidden;
  c.mixer = examples::lm_mixer(m.variant, m.window, m.bias, m.bias_dim);
  c.dropout = m.dropout;
  c.period = 3;
  return c;
}

nn::AdamW make_optimizer(const nn::AFTLM& model, double lr, double weight_decay) {
  auto groups = nn::make_param_groups(
      model, weight_decay, {nn::ParamKind::Bias, nn::ParamKind::Norm, nn::ParamKind::PositionBias, nn::ParamKind::Embedding});
  return nn::AdamW(std::move(groups), {.lr = lr, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = weight_decay});
}

double train_batch(const nn::AFTLM& model, const Batch& b, int64_t B, int64_t micro, Device device) {
  const int64_t T = kDims, M = micro > 0 ? std::min(micro, B) : B;
  AFT_CHECK(B >= 1 && static_cast<int64_t>(b.inputs.size()) == B * T && b.targets.size() == b.inputs.size(),
            "train_batch: the batch does not hold {} images", B);
  double total = 0;
  for (int64_t i0 = 0; i0 < B; i0 += M) {
    const int64_t m = std::min(M, B - i0);
    std::vector<int64_t> x(b.inputs.begin() + i0 * T, b.inputs.begin() + (i0 + m) * T);
    std::vector<int64_t> y(b.targets.begin() + i0 * T, b.targets.begin() + (i0 + m) * T);
    Tensor logits = intensity_logits(model.forward(from_vector<int64_t>(x, {m, T}).to(device)));
    Tensor loss = cross_entropy(logits.reshape({m * T, 256}), from_vector<int64_t>(y, {m * T}).to(device));
    Tensor weighted = m == B ? loss : mul(loss, static_cast<double>(m) / static_cast<double>(B));
    weighted.backward();
    total += loss.item() * static_cast<double>(m);
  }
  return total / static_cast<double>(B);
}

}  // namespace aft::cifar10
