// nn/optim/optim.h: optimizers (SGD, AdamW), parameter groups, global-norm gradient clipping.
//
// An optimizer updates parameters in place from their .grad(), under no-grad, on whatever
// device the parameters live (CPU loops, or the fused CUDA kernels of cuda/optim.cu). Each
// parameter group has its own weight decay, so norms, biases and position biases can be
// left undecayed. The learning rate is set from outside each step (nn/optim/schedule.h).
//
// Semantics (those of PyTorch's torch.optim.SGD / AdamW, element formulas in core/math/optim.h):
// - step() writes into the parameters' own storage: handles and identity stay, the storage
//   version is bumped (a graph that saved a parameter before the step refuses backward).
// - A parameter without a gradient is skipped and its state is left as it is. State buffers
//   are created (zero) at a parameter's first update; a zero buffer behaves exactly like a
//   missing one, so state_dict() gives zeros for a parameter never updated yet.
// - steps_taken() counts step() calls; AdamW's bias correction uses it (t = steps_taken()
//   after the increment) for every parameter, also for one that was skipped before (PyTorch
//   counts per parameter; the two agree whenever every parameter gets a gradient each step).
// - All parameters of a group must be on one device when step() runs; CUDA parameters are
//   updated by multi-tensor kernels (up to 48 tensors a launch, mixed groups) without any
//   host synchronisation. State buffers follow a parameter moved by Module::to (converted at
//   the next step). Parameters and gradients may have any strides (copies are made for the
//   non-contiguous ones).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nn/module.h"

namespace aft::nn {

struct ParamGroup {
  std::string name;                 // e.g. "decay", "no_decay"
  std::vector<std::string> names;   // parameter names, parallel to params (used in state_dict);
                                    // left empty, the optimizer names them "<name>.<index>"
  std::vector<Tensor> params;
  std::optional<double> weight_decay;  // unset: the optimizer's options.weight_decay
  double lr_scale = 1.0;            // this group's learning rate = lr() * lr_scale
};

// Two groups: "decay" (parameters whose kind is not in no_decay) with the given weight decay,
// and "no_decay" (biases, norms and position biases by default) with none.
std::vector<ParamGroup> make_param_groups(
    const Module& model, double weight_decay,
    const std::set<ParamKind>& no_decay = {ParamKind::Bias, ParamKind::Norm, ParamKind::PositionBias});
// One group ("all") holding every parameter of the model, with the given weight decay (unset:
// the optimizer's options.weight_decay).
std::vector<ParamGroup> single_group(const Module& model,
                                     std::optional<double> weight_decay = std::nullopt);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every parameter that has a gradient (parameters without one are skipped).
  virtual void step() = 0;
  void zero_grad();
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  int64_t steps_taken() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // The optimizer's state as named tensors, for checkpoints: "step" (0-d int64) and one entry
  // per buffer and parameter, e.g. "exp_avg.blocks.0.mlp.fc1.weight" (the tensors alias the
  // live state on the parameters' device: clone them to keep a snapshot). load_state_dict
  // checks every name and shape first and gives one aft::Error listing every missing,
  // unexpected and mis-shaped entry (nothing is changed then); values are converted to each
  // parameter's dtype and device. A resumed optimizer continues bit-identically on the CPU.
  virtual StateDict state_dict() const = 0;
  virtual void load_state_dict(const StateDict& state) = 0;

 protected:
  // Checks the groups: float parameters, no tensor and no name twice, names parallel to params
  // (filled in when left empty); an unnamed group is called "group<index>".
  Optimizer(std::vector<ParamGroup> groups, double lr);
  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t steps_ = 0;
};

struct SGDOptions {
  double lr = 0.1;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;  // L2, added to the gradient (for groups that leave theirs unset)
};

// v = momentum·v + (g + wd·p);  p -= lr · (nesterov ? g + wd·p + momentum·v : v)
// With momentum 0 no buffer is kept ("momentum.<name>" entries exist only with momentum > 0).
// Nesterov needs momentum > 0.
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions opts);
  void step() override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  SGDOptions options;

 private:
  std::vector<std::vector<Tensor>> momentum_;  // per group, per parameter (lazily created)
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // decoupled (for groups that leave theirs unset)
};

// Decoupled weight decay and bias correction (Loshchilov & Hutter):
//   p -= lr·wd·p;  m = b1·m + (1-b1)·g;  v = b2·v + (1-b2)·g²;
//   p -= lr · (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opts);
  void step() override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  AdamWOptions options;

 private:
  std::vector<std::vector<Tensor>> exp_avg_, exp_avg_sq_;  // per group, per parameter
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before
// clipping (inf/NaN when a gradient holds them: then nothing is scaled, unlike PyTorch, which
// would turn every gradient into NaN). As in PyTorch: norm = sqrt(sum of g² over every
// element of every gradient), accumulated in float64 (deterministic: fixed chunks summed in a
// fixed order); when max_norm / (norm + 1e-6) < 1 every gradient is multiplied by it.
// Parameters without a gradient are skipped; a non-contiguous gradient is replaced by a
// contiguous copy first. CPU and CUDA gradients may be mixed (CUDA ones on one device): the
// CUDA part takes one launch of partial sums per 48 tensors and dtype, one final reduction,
// one copy of the result to the host and, if clipping, one scaling launch per 48 tensors.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace aft::nn
