// nn/optim/schedule.cpp: the learning rate of step s (0-based) under linear warm-up and then cosine,
// linear or no decay.
//
//   s < W:        lr = base·(s+1)/W                          (W = warmup_steps; reaches base at s =
//   W-1) W <= s < N:   x = (s - W)/(N - W) in [0, 1)              (N = total_steps)
//                 cosine:   lr = min + (base - min)·(1 + cos(pi·x))/2
//                 linear:   lr = base + (min - base)·x
//                 constant: lr = base
//   s >= N:       lr = min (constant: base)
// So the decay starts at base at s = W and would reach min exactly at s = N; the cosine is
// at its midpoint (base + min)/2 at s = W + (N - W)/2.
#include "nn/optim/schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace aft::nn {

double LRSchedule::at(int64_t step) const {
  AFT_CHECK(std::isfinite(base_lr) && base_lr >= 0 && std::isfinite(min_lr) && min_lr >= 0,
            "LRSchedule: base_lr and min_lr must be finite and >= 0, got {} and {}", base_lr,
            min_lr);
  AFT_CHECK(total_steps >= 1 && warmup_steps >= 0 && warmup_steps <= total_steps,
            "LRSchedule: need 0 <= warmup_steps <= total_steps and total_steps >= 1, got "
            "warmup_steps {}, "
            "total_steps {}",
            warmup_steps, total_steps);
  AFT_CHECK(step >= 0, "LRSchedule: step must be >= 0, got {}", step);
  if (step < warmup_steps)
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (decay == Decay::Constant) return base_lr;
  if (step >= total_steps) return min_lr;
  const double x =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  if (decay == Decay::Linear) return base_lr + (min_lr - base_lr) * x;
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * x));
}

LRSchedule::Decay LRSchedule::parse_decay(const std::string& name) {
  if (name == "cosine") return Decay::Cosine;
  if (name == "linear") return Decay::Linear;
  if (name == "constant") return Decay::Constant;
  AFT_ERROR("LRSchedule: unknown decay '{}' (valid: cosine, linear, constant)", name);
}

}  // namespace aft::nn
