// tests/test_run_dir.cpp: a run directory belongs to one run (docs/reliability.md). Starting a
// run over another is refused unless asked to overwrite; resuming with another learning-rate
// schedule is refused unless asked to extend; a run directory that cannot be created is a clear
// error; a failed atomic write names the reason and leaves no temporary file; the programs
// recognise their own run directories; Ctrl-C gives exit status 130.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../examples/common/program.h"
#include "../examples/common/run_dir.h"
#include "example_helpers.h"
#include "helpers.h"
#include "nn/layers.h"
#include "nn/optim/optim.h"
#include "nn/run/metrics.h"
#include "nn/run/trainer.h"

using namespace aft;
using namespace aft::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& tag) { return scratch_dir("run_dir_" + tag, true); }

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A tiny regression run: a Linear layer fitting fixed data, everything from fixed seeds.
struct Run {
  Generator init{1}, gen{2};
  nn::Linear model{4, 1, true, &init};
  nn::AdamW opt{nn::make_param_groups(model, 0.0), nn::AdamWOptions{.lr = 1e-2}};
  nn::TrainResult fit(const std::string& dir, int64_t steps, bool resume = false, bool overwrite = false,
                      bool allow_change = false, const std::string& config = "{}") {
    nn::LRSchedule sched{.base_lr = 1e-2, .warmup_steps = 1, .total_steps = steps, .min_lr = 1e-3};
    nn::TrainerConfig cfg{.max_steps = steps, .log_every = 2, .out_dir = dir, .resume = resume, .overwrite = overwrite,
                          .allow_schedule_change = allow_change, .config_json = config, .quiet = true};
    nn::Trainer t(model, opt, sched, gen, cfg);
    return t.fit([&](int64_t) {
      Tensor x = randn({8, 4}, kFloat32, &gen);
      Tensor d = sub(model.forward(x), sum(x, {1}, true));
      Tensor loss = mean(mul(d, d));
      loss.backward();
      return nn::StepResult{loss.item(), 8};
    });
  }
};

}  // namespace

TEST_CASE("trainer: a run directory that cannot be created is an error naming it and the reason") {
  fs::path dir = scratch("create");
  write_bytes(dir / "a_file", {'x'});
  Run r;
  check_error([&] { r.fit((dir / "a_file" / "run").string(), 2); }, "cannot create the run directory");
  check_error([&] { r.fit((dir / "a_file" / "run").string(), 2); }, "Not a directory");
}

TEST_CASE("trainer: starting over an existing run is refused unless overwrite; resume continues it") {
  const std::string dir = scratch("claim").string();
  const nn::RunPaths p(dir);
  Run().fit(dir, 4);
  const std::string checkpoint = read_text(p.checkpoint), metrics = read_text(p.metrics_csv);
  check_error([&] { Run().fit(dir, 4); }, "already holds a run");
  check_error([&] { Run().fit(dir, 6); }, "--overwrite");
  CHECK(read_text(p.checkpoint) == checkpoint);  // nothing was touched
  CHECK(read_text(p.metrics_csv) == metrics);
  // Metrics alone (a run that crashed before its first checkpoint) are a run too.
  fs::remove(p.checkpoint);
  check_error([&] { Run().fit(dir, 4); }, "already holds a run");
  // Overwrite: the old run's files go first, then a fresh run of 3 steps.
  nn::TrainResult r = Run().fit(dir, 3, false, true);
  CHECK(r.start_step == 0);
  CHECK(nn::read_metrics_csv(p.metrics_csv).back().step == 3);
  // Resume of a finished run: nothing more to do, and nothing refused.
  CHECK(Run().fit(dir, 3, true).steps_run == 0);
}

TEST_CASE("trainer: resuming with another schedule is refused, unless the change is asked for") {
  const std::string dir = scratch("schedule").string();
  const nn::RunPaths p(dir);
  {
    Run a;
    nn::LRSchedule sched{.base_lr = 1e-2, .warmup_steps = 1, .total_steps = 10, .min_lr = 1e-3};
    nn::TrainerConfig cfg{.max_steps = 4, .log_every = 2, .out_dir = dir, .quiet = true};
    nn::Trainer t(a.model, a.opt, sched, a.gen, cfg);  // stopped at step 4 of a 10-step schedule
    t.fit([&](int64_t) {
      Tensor loss = mean(mul(a.model.forward(ones({2, 4})), 1.0));
      loss.backward();
      return nn::StepResult{loss.item(), 2};
    });
  }
  const std::string checkpoint = read_text(p.checkpoint), metrics = read_text(p.metrics_csv);
  // --steps 20 where the run was planned for 10: the learning rate would jump.
  check_error([&] { Run().fit(dir, 20, true); }, "was trained with the learning-rate schedule");
  check_error([&] { Run().fit(dir, 20, true); }, "\"total_steps\": 10");
  check_error([&] { Run().fit(dir, 20, true); }, "--extend-steps");
  CHECK(read_text(p.checkpoint) == checkpoint);  // refused before anything was written
  CHECK(read_text(p.metrics_csv) == metrics);
  // Asked for: it continues from step 4 with the new schedule.
  nn::TrainResult r = Run().fit(dir, 20, true, false, true);
  CHECK(r.start_step == 4);
  CHECK(r.step == 20);
  // The new schedule is now the run's: resuming with it again is accepted.
  CHECK(Run().fit(dir, 20, true).steps_run == 0);
}

TEST_CASE("write_file_atomic: a failed write names the reason and leaves no temporary file") {
  fs::path dir = scratch("atomic");
  fs::create_directories(dir / "target");  // a directory where the file should go: rename fails
  check_error([&] { nn::write_file_atomic((dir / "target").string(), "text"); }, "Is a directory");
  check_error([&] { nn::write_file_atomic((dir / "no" / "such").string(), "text"); }, "No such file or directory");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += 1 + 0 * static_cast<int>(e.path().empty());
  CHECK(entries == 1);  // just "target": no *.tmp.* left behind
  nn::write_file_atomic((dir / "ok.txt").string(), "text");
  CHECK(read_text(dir / "ok.txt") == "text");
}

TEST_CASE("programs: a run directory records its program, and other programs refuse it") {
  const std::string dir = scratch("kind").string();
  examples::TrainOptions t;
  t.steps = 2;
  nn::TrainerConfig tc = examples::trainer_config(t, dir, "cifar10", "images", "", R"({"model": {"x": 1}})");
  CHECK(tc.config_json == R"({"program": "cifar10", "model": {"x": 1}})");
  CHECK(examples::trainer_config(t, dir, "enwik8", "tokens", "", "{}").config_json == R"({"program": "enwik8"})");
  Run r;
  {
    nn::TrainerConfig cfg = tc;
    cfg.quiet = true;
    nn::LRSchedule sched{.total_steps = 2};
    nn::Trainer(r.model, r.opt, sched, r.gen, cfg).fit([&](int64_t) {
      Tensor loss = mean(r.model.forward(ones({2, 4})));
      loss.backward();
      return nn::StepResult{loss.item(), 2};
    });
  }
  CHECK(examples::read_run_config(dir, "cifar10").find("model") != nullptr);
  check_error([&] { examples::read_run_config(dir, "enwik8"); }, "this is a run of `cifar10`, not of `enwik8`");
  t.resume = true;  // `enwik8 train --resume` into a cifar10 run directory
  check_error([&] { examples::trainer_config(t, dir, "enwik8", "tokens", "", "{}"); }, "not of `enwik8`");
  t.overwrite = true;
  check_error([&] { examples::trainer_config(t, dir, "cifar10", "images", "", "{}"); }, "contradict");
  // Run directories written before the "program" entry: told by their keys.
  CHECK(examples::run_program_of(json::parse(R"({"model": {}, "classes": []})")) == "imagenet");
  CHECK(examples::run_program_of(json::parse(R"({"model": {}, "augment": true})")) == "cifar10");
  CHECK(examples::run_program_of(json::parse(R"({"model": {}})")) == "enwik8");
}

TEST_CASE("programs: Ctrl-C (an interrupted run) exits with status 130, a finished one with 0") {
  nn::TrainResult r;
  r.reason = nn::StopReason::Interrupted;
  CHECK(examples::report_training(r, "runs/x") == 130);
  r.reason = nn::StopReason::Finished;
  CHECK(examples::report_training(r, "runs/x") == 0);
  r.reason = nn::StopReason::TimeBudget;
  CHECK(examples::report_training(r, "runs/x") == 0);
}
