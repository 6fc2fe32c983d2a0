// nn/layers.h: the basic layers: Linear, LayerNorm, Embedding, Dropout, MLP.
//
// Shapes: x [..., D_in] -> [..., D_out]; leading dims are batch dims of any number.
// Initialisation (nn/init.h): Linear and Embedding weights N(0, 0.02), biases 0, LayerNorm
// weight 1 and bias 0. Pass a Generator to make initialisation reproducible.
#pragma once

#include "core/random.h"
#include "nn/module.h"
#include "ops/ops.h"

namespace aft::nn {

// y = x @ weight^T + bias, weight [out, in] (PyTorch's layout, so checkpoints map 1:1).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined without bias
};

// Normalises the last dim to zero mean, unit variance, then scales and shifts.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) const;
  int64_t dim;
  double eps;
  Tensor weight, bias;  // [dim] each, undefined when not affine
};

// Rows of a table: indices int64 [...] -> [..., dim].
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator* gen = nullptr);
  Tensor forward(const Tensor& indices) const;
  int64_t num, dim;
  Tensor weight;  // [num, dim]
};

// Zeroes elements with probability p while training (scaling the rest by 1/(1-p)); identity in
// eval mode. The mask comes from `gen` (the default generator when null).
class Dropout : public Module {
 public:
  explicit Dropout(double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  double p;
  Generator* gen;
};

// The transformer's feed-forward block, with dropout on its output:
//   x [..., dim] -> fc1 -> [..., hidden] -> GELU -> fc2 -> [..., dim] -> dropout
class MLP : public Module {
 public:
  MLP(int64_t dim, int64_t hidden, double dropout = 0.0, Generator* gen = nullptr,
      GeluApprox approx = GeluApprox::Tanh);
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<Dropout> drop;
  GeluApprox approx;
};

}  // namespace aft::nn
