// examples/cifar10/train.h: the image model's configuration, optimizer and training batch, shared
// by the program's train and bench commands and by the tests.
#pragma once

#include <string>

#include "data.h"
#include "nn/aft_lm.h"
#include "nn/optim/optim.h"

namespace aft::cifar10 {

struct ModelOptions {
  std::string variant = "local";    // local | full | simple
  std::string bias = "factorized";  // factorized | full (local, full)
  int64_t dim = 64, layers = 2, mlp_hidden = 256, window = 256, bias_dim = 64;
  double dropout = 0.0;
};

// nn::AFTLM over sub-pixel sequences: vocab 257 (256 intensities + SOS), context 3,072, and a
// channel embedding of period 3 (position t predicts sub-pixel t, whose channel is t mod 3).
nn::AFTLMConfig image_model_config(const ModelOptions& m);

// AdamW (β = 0.9, 0.95) with weight decay on the linear layers' weights only, as in the paper:
// embeddings, norms, biases and position biases are not decayed.
nn::AdamW make_optimizer(const nn::AFTLM& model, double lr, double weight_decay);

// Forward and backward of a batch of B images (inputs and targets of make_batch), in
// micro-batches of at most `micro` images (0: all at once) whose gradients add up to those of
// the whole batch: each micro-batch's mean loss enters weighted by m / B. Returns the batch's
// mean loss (nats per sub-pixel).
double train_batch(const nn::AFTLM& model, const Batch& batch, int64_t B, int64_t micro, Device device);

}  // namespace aft::cifar10
