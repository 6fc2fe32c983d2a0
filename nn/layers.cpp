// nn/layers.cpp: Linear, LayerNorm, Embedding, Dropout, MLP.
#include "nn/layers.h"

#include "core/format.h"
#include "nn/init.h"

namespace aft::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* gen)
    : Module("Linear"), in_features(in), out_features(out) {
  AFT_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got {} -> {}", in, out);
  weight = register_parameter("weight", empty({out, in}), ParamKind::Weight);
  init::normal_(weight, 0.0, init::kProjectionStd, gen);
  if (with_bias) bias = register_parameter("bias", zeros({out}), ParamKind::Bias);
}

Tensor Linear::forward(const Tensor& x) const {
  AFT_CHECK(x.defined() && x.ndim() >= 1 && x.size(-1) == in_features,
            "Linear: input of shape {} does not end in {} features", x.defined() ? x.shape() : Shape{},
            in_features);
  Tensor y = matmul(x, weight.t());
  return bias.defined() ? add(y, bias) : y;
}

LayerNorm::LayerNorm(int64_t d, double e, bool affine) : Module("LayerNorm"), dim(d), eps(e) {
  AFT_CHECK(d > 0 && e > 0, "LayerNorm: need dim > 0 and eps > 0, got {} and {}", d, e);
  if (affine) {
    weight = register_parameter("weight", ones({d}), ParamKind::Norm);
    bias = register_parameter("bias", zeros({d}), ParamKind::Norm);
  }
}

Tensor LayerNorm::forward(const Tensor& x) const {
  AFT_CHECK(x.defined() && x.ndim() >= 1 && x.size(-1) == dim,
            "LayerNorm: input of shape {} does not end in {}", x.defined() ? x.shape() : Shape{}, dim);
  return layer_norm(x, weight, bias, eps);
}

Embedding::Embedding(int64_t n, int64_t d, Generator* gen) : Module("Embedding"), num(n), dim(d) {
  AFT_CHECK(n > 0 && d > 0, "Embedding: sizes must be positive, got {} x {}", n, d);
  weight = register_parameter("weight", empty({n, d}), ParamKind::Embedding);
  init::normal_(weight, 0.0, init::kProjectionStd, gen);
}

Tensor Embedding::forward(const Tensor& indices) const { return embedding(weight, indices); }

Dropout::Dropout(double prob, Generator* g) : Module("Dropout"), p(prob), gen(g) {
  AFT_CHECK(prob >= 0 && prob < 1, "Dropout: p must be in [0, 1), got {}", prob);
}

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p == 0) return x;
  return dropout(x, p, true, gen);
}

MLP::MLP(int64_t dim, int64_t hidden, double p, Generator* gen, GeluApprox a)
    : Module("MLP"), approx(a) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, true, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, true, gen));
  drop = register_module("drop", std::make_shared<Dropout>(p, gen));
}

Tensor MLP::forward(const Tensor& x) const {
  return drop->forward(fc2->forward(gelu(fc1->forward(x), approx)));
}

}  // namespace aft::nn
