// nn/run/trainer.h: the training loop the example programs share.
//
// The program supplies what is specific to it: a step function (forward and backward of one
// batch, drawing its data and dropout from the run's Generator) and an evaluation function.
// The trainer owns the rest: the learning-rate schedule, gradient clipping, the optimizer step,
// timing and throughput, a progress bar on a terminal (plain log lines otherwise), the metrics
// log (metrics.csv / metrics.jsonl), the curves (curves.svg), periodic evaluation and
// checkpoints, resuming, a wall-clock budget, and Ctrl-C (finish the step, save, return).
// The run directory is described in nn/run/metrics.h.
//
// One step s (0-based) of the loop:
//   optimizer.set_lr(schedule.at(s));  r = step_fn(s);  [clip_grad_norm]
//   optimizer.step();  optimizer.zero_grad();  step = s + 1;  then log / evaluate / checkpoint
// Evaluation runs in eval mode under NoGradGuard, and the generator is put back where it was
// afterwards, so evaluating (or not) never changes what training draws.
//
// Exact resume: a checkpoint holds the model, the optimizer state (its moments and step
// count), the step, and the generator's (seed, offset). The learning rate is a function of the
// step. So when every random draw of the step function comes from the trainer's generator,
// training N steps, stopping, and resuming for M more gives bit-identical parameters to N + M
// steps straight through (same thread count, CPU).
//
// A run directory belongs to one run. Starting (resume false) in a directory that already holds
// a checkpoint or metrics is an aft::Error unless `overwrite` is set (which then removes the old
// run's checkpoint, metrics and curves first). Resuming with a learning-rate schedule other
// than the one saved in the checkpoint ("trainer.schedule") would make the run neither the old
// one nor a fresh one: an aft::Error naming both schedules, unless allow_schedule_change is set.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "core/random.h"
#include "nn/run/checkpoint.h"
#include "nn/run/metrics.h"
#include "nn/module.h"
#include "nn/optim/optim.h"
#include "nn/optim/schedule.h"

namespace aft::nn {

struct TrainerConfig {
  int64_t max_steps = 0;          // total optimizer steps (counting resumed ones); 0: no limit
  double time_budget_s = 0;       // stop after this much wall time in this invocation; 0: none
  int64_t log_every = 10;         // a metrics row (and a log line when not on a terminal)
  int64_t eval_every = 0;         // 0: evaluate only at the end
  int64_t checkpoint_every = 0;   // 0: only at the end, on Ctrl-C and when the budget runs out
  double clip_grad_norm = 0;      // > 0: clip the global gradient norm to this
  std::string out_dir;            // run directory (created); empty: write no files
  bool resume = false;            // continue from out_dir's checkpoint when there is one
  bool overwrite = false;         // start afresh over a run directory that already holds a run
  bool allow_schedule_change = false;  // on resume, accept a learning-rate schedule other than the checkpoint's
  std::string unit = "items";     // what the step function counts: "tokens", "images"
  std::string config_json = "{}"; // the program's configuration, saved in checkpoints
  std::string title;              // title of curves.svg
  bool quiet = false;             // no progress output
  int progress_bar = -1;          // -1: when the log stream is a terminal; 0: plain lines; 1: bar
  bool handle_sigint = true;      // Ctrl-C: finish the step, checkpoint, return
  std::FILE* log = nullptr;       // progress and log lines; null: stderr
};

struct StepResult {
  double loss = 0;    // the batch's loss (must be finite: a NaN/inf loss stops with aft::Error)
  int64_t items = 0;  // tokens, images... processed, for throughput
};
using StepFn = std::function<StepResult(int64_t step)>;
using EvalFn = std::function<Metrics(int64_t step)>;

enum class StopReason { Finished, TimeBudget, Interrupted };
const char* stop_reason_name(StopReason r);

struct TrainResult {
  StopReason reason = StopReason::Finished;
  int64_t step = 0;        // optimizer steps completed in total (resumed ones included)
  int64_t steps_run = 0;   // steps taken by this call
  int64_t start_step = 0;  // where this call began (the checkpoint's step when resumed)
  double seconds = 0;      // wall time of this call
  double loss = 0;         // the smoothed training loss at the end
  Metrics eval;            // the last evaluation's results (empty when none ran)
};

class Trainer {
 public:
  // `gen` is the generator the step function draws its batches and dropout masks from; its
  // state is saved in checkpoints and restored on resume.
  Trainer(Module& model, Optimizer& optimizer, LRSchedule schedule, Generator& gen, TrainerConfig config);

  TrainResult fit(const StepFn& step, const EvalFn& eval = {});

  const TrainerConfig& config() const { return cfg_; }
  RunPaths paths() const { return RunPaths(cfg_.out_dir); }
  // Saves a checkpoint of the current state at `step` into out_dir (fit() does this itself).
  void save(int64_t step);
  // Entries the program wants kept in checkpoints (e.g. the best validation loss); resuming
  // restores them. Keys starting with "trainer." are the trainer's own.
  Metadata extra;

 private:
  Module& model_;
  Optimizer& opt_;
  LRSchedule schedule_;
  Generator& gen_;
  TrainerConfig cfg_;
  double time_before_ = 0;  // training wall time of earlier (resumed) invocations
  double time_now_ = 0;     // ... plus this one's, as of the last step
  // The loss statistics, saved in checkpoints so a resumed run logs the same numbers: the EMA
  // (bias-corrected by its weight) and the sums of the window since the last metrics row.
  struct LossStats {
    double ema = 0, ema_weight = 0, win_loss = 0, win_norm = 0;
    int64_t win_steps = 0;
  } stats_;
};

// "4.2s", "42s", "3:07", "1:02:03": durations for progress lines.
std::string format_duration(double seconds);
// "950", "12.3k", "4.56M": rates for progress lines.
std::string format_count(double v);

}  // namespace aft::nn
