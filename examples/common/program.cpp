// examples/common/program.cpp: the example programs' shared scaffolding (see program.h).
#include "program.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "core/format.h"
#include "core/parallel.h"
#include "cuda/blas.h"
#include "nn/run/json.h"
#include "run_dir.h"

namespace aft::examples {

namespace {
constexpr int64_t kMaxThreads = 1024;  // set_num_threads' limit (core/parallel.cpp)
}  // namespace

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
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s %s: error: out of memory\n", program.c_str(), cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    // Anything else the standard library throws (std::filesystem_error, ...) is reported the
    // same way: a message and status 1, never std::terminate.
    std::fprintf(stderr, "%s %s: error: %s\n", program.c_str(), cmd.c_str(), e.what());
    return 1;
  }
}

void add_device_options(cli::Cli& c, RunOptions& o) {
  c.add("--device", &o.device, "cpu or cuda[:N]");
  c.add("--tf32", &o.tf32,
        "on | off: float32 matmuls on CUDA use TF32 tensor cores (about 10 mantissa bits per "
        "product, float32 sums; the usual GPU training setting). on by default in these programs; "
        "the library's default, and the tests', is off. No effect on the CPU or float64");
  c.add("--threads", &o.threads, "CPU threads (0: AFT_NUM_THREADS or all cores)");
}

Device setup_run(RunOptions& o, const std::string& program) {
  AFT_CHECK(o.tf32 == "on" || o.tf32 == "off", "--tf32 must be on or off, got '{}'", o.tf32);
  cuda::set_allow_tf32(o.tf32 == "on");
  AFT_CHECK(o.threads >= 0 && o.threads <= kMaxThreads, "--threads must be in [0, {}] (0: AFT_NUM_THREADS or all cores), got {}",
            kMaxThreads, o.threads);
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
  c.add("--overwrite", &t.overwrite, "start afresh in a run directory that holds a run, replacing it");
  c.add("--extend-steps", &t.extend_steps,
        "with --resume: accept a --steps (hence a learning-rate schedule) other than the checkpoint's");
  c.add("--quiet", &t.quiet, "no progress output");
}

nn::LRSchedule lr_schedule(const TrainOptions& t) {
  return {.base_lr = t.lr, .warmup_steps = std::min(t.warmup, t.steps), .total_steps = t.steps,
          .decay = nn::LRSchedule::parse_decay(t.decay), .min_lr = t.lr * t.min_lr_ratio};
}

nn::TrainerConfig trainer_config(const TrainOptions& t, const std::string& out, const std::string& program,
                                 const std::string& unit, const std::string& title, const std::string& config_json) {
  AFT_CHECK(!(t.resume && t.overwrite), "--resume and --overwrite contradict each other: give one");
  AFT_CHECK(t.resume || !t.extend_steps, "--extend-steps applies to --resume only");
  if (t.resume) check_run_program(out, program);
  nn::TrainerConfig tc;
  tc.max_steps = t.steps;
  tc.time_budget_s = t.time_budget;
  tc.log_every = t.log_every;
  tc.eval_every = t.eval_every;
  tc.checkpoint_every = t.checkpoint_every;
  tc.clip_grad_norm = t.clip;
  tc.out_dir = out;
  tc.resume = t.resume;
  tc.overwrite = t.overwrite;
  tc.allow_schedule_change = t.extend_steps;
  tc.unit = unit;
  tc.title = title;
  tc.quiet = t.quiet;
  AFT_CHECK(config_json.size() >= 2 && config_json.front() == '{' && config_json.back() == '}',
            "trainer_config: the configuration must be a JSON object, got {}", config_json);
  const bool empty = config_json.find_first_not_of(" \t\n", 1) == config_json.size() - 1;
  tc.config_json = "{\"program\": " + json::quote(program) + (empty ? "" : ", ") + config_json.substr(1);
  return tc;
}

int report_training(const nn::TrainResult& r, const std::string& out) {
  std::fprintf(stderr, "%s after %lld steps (%.0f s); run directory: %s\n", nn::stop_reason_name(r.reason),
               (long long)r.step, r.seconds, out.c_str());
  return r.reason == nn::StopReason::Interrupted ? 130 : 0;
}

}  // namespace aft::examples
