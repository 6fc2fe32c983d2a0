// examples/common/program.cpp: the example programs' shared scaffolding (see program.h).
#include "program.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "core/format.h"
#include "core/parallel.h"

namespace aft::examples {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int run_program(int argc, char** argv, const std::string& program, const std::string& usage,
                std::initializer_list<Command> commands) {
  auto print_usage = [&](int code) {
    std::fputs(usage.c_str(), stdout);
    return code;
  };
  if (argc < 2) return print_usage(2);
  std::string cmd = argv[1];
  try {
    for (const Command& c : commands)
      if (cmd == c.name) return c.run(argc, argv);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return print_usage(0);
    std::fprintf(stderr, "%s: unknown command '%s'\n", program.c_str(), cmd.c_str());
    return print_usage(2);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s %s: error: %s\n", program.c_str(), cmd.c_str(), e.what());
    return 1;
  }
}

Device setup_run(RunOptions& o, const std::string& program) {
  if (o.threads > 0) set_num_threads(static_cast<int>(o.threads));
  if (o.out.empty()) o.out = "runs/" + program + "-" + o.preset;
  return parse_device(o.device.c_str());
}

void preset_from_argv(int argc, char** argv, const std::function<void(const std::string&)>& apply) {
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--preset" && i + 1 < argc) apply(argv[i + 1]);
    else if (a.rfind("--preset=", 0) == 0) apply(a.substr(9));
  }
}

void add_schedule_options(cli::Cli& c, TrainOptions& t) {
  c.add("--steps", &t.steps, "optimizer steps (in total, resumed ones included)");
  c.add("--time", &t.time_budget, "stop after this many seconds (0: no limit)");
  c.add("--min-lr-ratio", &t.min_lr_ratio, "final learning rate as a fraction of --lr");
  c.add("--warmup", &t.warmup, "linear warm-up steps");
  c.add("--clip", &t.clip, "clip the global gradient norm (0: off)");
}

void add_loop_options(cli::Cli& c, TrainOptions& t) {
  c.add("--eval-every", &t.eval_every, "evaluate every N steps (0: at the end only)");
  c.add("--checkpoint-every", &t.checkpoint_every, "checkpoint every N steps (0: at the end only)");
  c.add("--log-every", &t.log_every, "a metrics row every N steps");
  c.add("--resume", &t.resume, "continue from the run directory's checkpoint");
  c.add("--quiet", &t.quiet, "no progress output");
}

nn::LRSchedule lr_schedule(const TrainOptions& t) {
  return {.base_lr = t.lr, .warmup_steps = std::min(t.warmup, t.steps), .total_steps = t.steps,
          .decay = nn::LRSchedule::parse_decay(t.decay), .min_lr = t.lr * t.min_lr_ratio};
}

nn::TrainerConfig trainer_config(const TrainOptions& t, const std::string& out, const std::string& unit,
                                 const std::string& title, const std::string& config_json) {
  nn::TrainerConfig tc;
  tc.max_steps = t.steps;
  tc.time_budget_s = t.time_budget;
  tc.log_every = t.log_every;
  tc.eval_every = t.eval_every;
  tc.checkpoint_every = t.checkpoint_every;
  tc.clip_grad_norm = t.clip;
  tc.out_dir = out;
  tc.resume = t.resume;
  tc.unit = unit;
  tc.title = title;
  tc.quiet = t.quiet;
  tc.config_json = config_json;
  return tc;
}

void report_training(const nn::TrainResult& r, const std::string& out) {
  std::fprintf(stderr, "%s after %lld steps (%.0f s); run directory: %s\n", nn::stop_reason_name(r.reason),
               (long long)r.step, r.seconds, out.c_str());
}

}  // namespace aft::examples
