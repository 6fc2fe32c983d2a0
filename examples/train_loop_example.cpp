// examples/train_loop_example.cpp: the smallest complete program built on nn::Trainer, the one
// docs/training.md walks through: a Module subclass, data drawn from the run's generator, AdamW
// with weight-decay groups, a warm-up + cosine schedule, periodic evaluation and checkpoints.
// The task (needs no data): classify points of three interleaved spiral arms.
//
//   train_loop_example [--steps N] [--out DIR] [--resume] [--threads N]
//
// It writes DIR/metrics.csv, metrics.jsonl, curves.svg, config.json and checkpoint.safetensors.
// Ctrl-C stops after the current step with a checkpoint; --resume continues from it, and the
// result is the same as an uninterrupted run.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "aft.h"
#include "nn/layers.h"
#include "nn/optim/optim.h"
#include "nn/optim/schedule.h"
#include "nn/run/trainer.h"

using namespace aft;

namespace {

// A module: two Linear layers with dropout between them and a learned logit temperature.
// Children are registered under a name (their parameters become "fc1.weight", ...); the
// temperature is a parameter of this module, kind Norm so that it is not weight-decayed.
class SpiralNet : public nn::Module {
 public:
  SpiralNet(int64_t hidden, Generator* init_gen, Generator* dropout_gen) : Module("SpiralNet") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(2, hidden, true, init_gen));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.1, dropout_gen));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, 3, true, init_gen));
    log_temp = register_parameter("log_temp", zeros({1}), nn::ParamKind::Norm);
  }
  // x [N, 2] -> logits [N, 3]
  Tensor forward(const Tensor& x) const {
    Tensor h = drop->forward(tanh(fc1->forward(x)));
    return mul(fc2->forward(h), exp(log_temp));
  }
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> drop;
  Tensor log_temp;  // [1]
};

struct Batch {
  Tensor x, y;  // [N, 2] float32, [N] int64
};

// N random points: class c, radius r ~ U[0, 1), angle 4c + 4r + noise; every number comes from gen.
Batch sample_spirals(int64_t n, Generator& gen) {
  std::vector<int64_t> cls = randint(0, 3, {n}, kInt64, &gen).to_vector<int64_t>();
  std::vector<float> r = rand({n}, kFloat32, &gen).to_vector<float>();
  std::vector<float> noise = randn({n}, kFloat32, &gen).to_vector<float>();
  std::vector<float> xy(static_cast<size_t>(2 * n));
  for (size_t i = 0; i < cls.size(); ++i) {
    float t = 4.0f * static_cast<float>(cls[i]) + 4.0f * r[i] + 0.2f * noise[i];
    xy[2 * i] = r[i] * std::sin(t);
    xy[2 * i + 1] = r[i] * std::cos(t);
  }
  return {from_vector<float>(xy, {n, 2}), from_vector<int64_t>(cls, {n})};
}

int usage(int code) {
  std::printf(
      "train_loop_example: trains a small classifier on 3 spirals with nn::Trainer.\n"
      "  --steps N     optimizer steps (default 1000)\n"
      "  --out DIR     run directory (default runs/spirals)\n"
      "  --resume      continue from DIR/checkpoint.safetensors when it exists\n"
      "  --overwrite   start afresh in a DIR that already holds a run (replacing it)\n"
      "  --threads N   CPU threads (default: AFT_NUM_THREADS or all cores)\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 1000;
  std::string out = "runs/spirals";
  bool resume = false, overwrite = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "train_loop_example: %s needs a value\n", name);
        std::exit(usage(2));
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return usage(0);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoll(next("--steps"));
    else if (!std::strcmp(argv[i], "--out")) out = next("--out");
    else if (!std::strcmp(argv[i], "--resume")) resume = true;
    else if (!std::strcmp(argv[i], "--overwrite")) overwrite = true;
    else if (!std::strcmp(argv[i], "--threads")) set_num_threads(std::atoi(next("--threads")));
    else {
      std::fprintf(stderr, "train_loop_example: unknown argument '%s'\n", argv[i]);
      return usage(2);
    }
  }
  if (steps < 1) return usage(2);

  try {
    // Model: initialised from its own seed. `gen` feeds the batches and the dropout masks; the
    // trainer saves its position in checkpoints, which is what makes --resume exact.
    Generator init_gen(1), gen(2), valid_gen(3);
    SpiralNet model(64, &init_gen, &gen);
    nn::AdamW opt(nn::make_param_groups(model, 0.01), nn::AdamWOptions{.lr = 1e-2});
    nn::LRSchedule schedule{.base_lr = 1e-2, .warmup_steps = 50, .total_steps = steps, .min_lr = 1e-4};
    const int64_t batch = 128;
    const Batch valid = sample_spirals(2048, valid_gen);  // fixed validation set

    nn::TrainerConfig cfg{.max_steps = steps,
                          .log_every = 25,
                          .eval_every = 100,
                          .checkpoint_every = 250,
                          .clip_grad_norm = 1.0,
                          .out_dir = out,
                          .resume = resume,
                          .overwrite = overwrite,
                          .unit = "points",
                          .config_json = fmt::format(R"({{"hidden": 64, "batch": {}, "steps": {}}})", batch, steps),
                          .title = "3 spirals"};
    nn::Trainer trainer(model, opt, schedule, gen, cfg);

    // One step: forward and backward of a fresh batch (the trainer clips, steps and zeroes).
    auto step = [&](int64_t) {
      Batch b = sample_spirals(batch, gen);
      Tensor loss = cross_entropy(model.forward(b.x), b.y);
      loss.backward();
      return nn::StepResult{loss.item(), batch};
    };
    // Evaluation: called in eval mode (no dropout) under NoGradGuard.
    auto eval = [&](int64_t) {
      Tensor logits = model.forward(valid.x);
      double loss = cross_entropy(logits, valid.y).item();
      double acc = mean(eq(max(logits, 1).indices, valid.y).to(kFloat64)).item();
      return nn::Metrics{{"valid_loss", loss}, {"valid_acc", acc}};
    };
    nn::TrainResult r = trainer.fit(step, eval);
    return r.reason == nn::StopReason::Interrupted ? 130 : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "train_loop_example: %s\n", e.what());
    return 1;
  }
}
