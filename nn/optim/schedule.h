// nn/optim/schedule.h: learning-rate schedules: linear warm-up, then cosine or linear decay (or
// constant) down to min_lr at total_steps.
#pragma once

#include <cstdint>
#include <string>

namespace aft::nn {

struct LRSchedule {
  enum class Decay { Cosine, Linear, Constant };
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  Decay decay = Decay::Cosine;
  double min_lr = 0.0;

  // Learning rate for step s (0-based): s < warmup: base·(s+1)/warmup; then decay from base to
  // min over the remaining steps; min from total_steps on (Constant: base throughout after the
  // warm-up). Formulas in nn/optim/schedule.cpp. aft::Error for s < 0, negative rates, or unless
  // 0 <= warmup_steps <= total_steps and total_steps >= 1.
  double at(int64_t step) const;
  // "cosine", "linear", "constant"; anything else is an aft::Error listing these.
  static Decay parse_decay(const std::string& name);
};

}  // namespace aft::nn
