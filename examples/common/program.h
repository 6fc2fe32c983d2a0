// examples/common/program.h: what the example programs (enwik8, cifar10, imagenet) share around
// their commands: the subcommand dispatch of main(), the options every command has (run
// directory, device, threads, seed, preset), and the training loop's options, schedule and
// trainer settings.
//
//   int main(int argc, char** argv) {
//     return examples::run_program(argc, argv, "enwik8", kUsage, {{"train", cmd_train}, ...});
//   }
//
// A command's options struct derives from RunOptions and holds a TrainOptions (with the
// program's defaults) when it trains:
//
//   struct Options : examples::RunOptions { examples::TrainOptions train{.steps = 2000, ...}; ... };
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "cli.h"
#include "core/device.h"
#include "nn/run/trainer.h"

namespace aft::examples {

// Seconds on a steady clock, for rates and progress reports.
double now_s();

// One subcommand: `program <name> [options]`; run gets the whole argv (its options start at 2).
struct Command {
  const char* name;
  int (*run)(int argc, char** argv);
};

// main() of a program with subcommands: runs the one named by argv[1]. `usage` (printed for
// --help, -h, help, no command and an unknown command) lists the commands. An aft::Error is
// printed as "<program> <command>: error: <message>" and exits 1; a bad command exits 2.
int run_program(int argc, char** argv, const std::string& program, const std::string& usage,
                std::initializer_list<Command> commands);

// The options every command has.
struct RunOptions {
  std::string out;           // run directory; empty: runs/<program>-<preset>
  std::string device = "cpu";
  std::string preset = "tiny";
  int64_t threads = 0;       // 0: AFT_NUM_THREADS or all cores
  int64_t seed = 1;
  std::string tf32 = "on";   // float32 matmuls on TF32 tensor cores (CUDA only): on | off
};

// Registers --device, --tf32 and --threads (their help is the same in every program).
void add_device_options(cli::Cli& c, RunOptions& o);

// After parsing: applies --threads and --tf32 and fills in the default run directory. Returns
// --device.
Device setup_run(RunOptions& o, const std::string& program);

// Calls apply(name) for a preset named on the command line (--preset X or --preset=X), before
// the options are parsed, so that every other option overrides the preset.
void preset_from_argv(int argc, char** argv, const std::function<void(const std::string&)>& apply);

// The training loop's options (nn::Trainer and the learning-rate schedule).
struct TrainOptions {
  int64_t steps = 1000, warmup = 100, eval_every = 250, checkpoint_every = 250, log_every = 10;
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, clip = 1.0, time_budget = 0;
  std::string decay = "cosine";  // after warm-up: cosine | linear | constant
  bool resume = false, quiet = false;
  bool overwrite = false;     // start afresh over an existing run directory (replacing its run)
  bool extend_steps = false;  // on --resume, accept a --steps (so a schedule) other than the checkpoint's
};

// Registers the options whose help is the same in every program: the schedule (--steps --time
// --min-lr-ratio --warmup --clip), then evaluation, checkpoints and logging (--eval-every
// --checkpoint-every --log-every --resume --overwrite --extend-steps --quiet). The program registers --lr, --weight-decay
// and --decay itself (their help, or whether it has them, differs).
void add_schedule_options(cli::Cli& c, TrainOptions& t);
void add_loop_options(cli::Cli& c, TrainOptions& t);

// Linear warm-up over min(warmup, steps) steps to lr, then `decay` down to lr · min_lr_ratio.
nn::LRSchedule lr_schedule(const TrainOptions& t);

// The trainer's settings from the options; unit ("tokens", "images"), the title of the curves
// and the configuration saved in checkpoints (a JSON object) are the program's. The saved
// configuration gets a "program" entry naming `program`, so that other commands and programs
// can tell whose run directory it is (run_dir.h); resuming checks it.
nn::TrainerConfig trainer_config(const TrainOptions& t, const std::string& out, const std::string& program,
                                 const std::string& unit, const std::string& title, const std::string& config_json);

// "<why it stopped> after N steps (S s); run directory: <out>" on stderr. Returns the program's
// exit status: 0, or 130 (the shell's convention for SIGINT) when Ctrl-C stopped the run.
int report_training(const nn::TrainResult& r, const std::string& out);

}  // namespace aft::examples
