// examples/cifar10/main.cpp: an autoregressive AFT image model on CIFAR-10: train, evaluate in
// bits per dimension, complete the bottom halves of test images, draw samples, and measure
// training throughput beside the same model in PyTorch.
//
//   cifar10 train    --data DIR|cifar-10-binary.tar.gz [--preset tiny|small|paper] [--out DIR] ...
//   cifar10 eval     --data ... --out DIR [--max-images N]
//   cifar10 complete --data ... --out DIR [--images 0-7] [--samples 2] [--png FILE]
//   cifar10 sample   --out DIR [--count 16] [--png FILE]
//   cifar10 bench    [--preset tiny] [--steps 5] [--threads 2] [--torch]
//
// Each image is a sequence of 3,072 sub-pixels (raster order, R, G, B of each pixel in turn;
// examples/cifar10/data.h), each a 256-way class. The model is nn::AFTLM: a token embedding and
// a prediction head shared by R, G and B (257 tokens: the intensities and SOS), a learned
// position embedding (3,072) and a channel embedding (period 3), L pre-norm causal AFT blocks,
// final LayerNorm. Training draws random training images, augments them (flip, shift) and
// minimises the mean cross-entropy of every sub-pixel given those before it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "../common/cli.h"
#include "../common/lm_run.h"
#include "../common/png.h"
#include "../common/program.h"
#include "aft.h"
#include "bpd.h"
#include "data.h"
#include "train.h"
#include "nn/aft_lm.h"
#include "nn/optim/optim.h"

using namespace aft;
using namespace aft::cifar10;

namespace {

// Options of every command (run directory, device, threads, seed, preset: examples/common/program.h).
struct Options : examples::RunOptions {
  // data
  std::string data;
  // model
  std::string variant = "local", bias = "factorized";
  int64_t dim = 64, layers = 2, mlp_hidden = 256, window = 256, bias_dim = 64;
  double dropout = 0.0;
  // training
  int64_t batch = 8, micro_batch = 0, eval_images = 64;
  examples::TrainOptions train{.steps = 300, .warmup = 30, .eval_every = 100, .checkpoint_every = 100,
                               .log_every = 5, .lr = 3e-3, .min_lr_ratio = 0.1, .weight_decay = 0.1, .clip = 1.0};
  bool no_augment = false;
  // evaluation and sampling
  int64_t max_images = 0, eval_batch = 8, count = 16, cols = 0, samples = 2, top_k = 0, scale = 2;
  std::string images = "0-7", png;
  double temperature = 1.0;
  // bench
  int64_t bench_steps = 5, bench_warmup = 1;
  bool torch = false;
  std::string python = "/usr/bin/python3", script, torch_impl = "blocked";
};

// Presets: tiny trains in minutes on 2 CPU cores; small is for one GPU (minutes); paper is the
// AFT paper's CIFAR-10 model (L = 24, d = 256, AFT-local window 256, factorised bias d' = 64,
// AdamW lr 3e-3 with warm-up, weight decay 0.1, dropout 0.1, batch 128). Every preset keeps the
// default mixer: AFT-local, window 256, factorised bias with d' = 64.
void apply_preset(Options& o, const std::string& name) {
  o.preset = name;
  o.window = 256;
  o.bias_dim = 64;
  examples::TrainOptions& t = o.train;
  if (name == "tiny") {
    o.dim = 64; o.layers = 2; o.mlp_hidden = 256; o.dropout = 0.0;
    o.batch = 8; o.micro_batch = 0; t.lr = 3e-3; t.warmup = 30; t.steps = 300;
    t.eval_every = 100; o.eval_images = 64; t.checkpoint_every = 100; t.log_every = 5;
  } else if (name == "small") {
    o.dim = 256; o.layers = 8; o.mlp_hidden = 1024; o.dropout = 0.1;
    o.batch = 32; o.micro_batch = 0; t.lr = 2e-3; t.warmup = 300; t.steps = 3000;
    t.eval_every = 500; o.eval_images = 1000; t.checkpoint_every = 500; t.log_every = 10;
  } else if (name == "paper") {
    o.dim = 256; o.layers = 24; o.mlp_hidden = 1024; o.dropout = 0.1;
    o.batch = 128; o.micro_batch = 16; t.lr = 3e-3; t.warmup = 2000; t.steps = 80000;
    t.eval_every = 2000; o.eval_images = 0; t.checkpoint_every = 1000; t.log_every = 10;
  } else {
    AFT_ERROR("--preset must be tiny, small or paper, got '{}'", name);
  }
}

// The preset named on the command line, applied before parsing so that every other option
// overrides it.
void preset_from_argv(Options& o, int argc, char** argv) {
  examples::preset_from_argv(argc, argv, [&](const std::string& p) { apply_preset(o, p); });
}

void add_run(cli::Cli& c, Options& o) {
  c.add("--out", &o.out, "run directory (checkpoint, metrics, curves, pictures); default runs/cifar10-<preset>");
  examples::add_device_options(c, o);
}

void add_data(cli::Cli& c, Options& o) {
  c.add("--data", &o.data, "CIFAR-10 binary version, required: a directory with the .bin files, or cifar-10-binary.tar.gz");
}

void add_model(cli::Cli& c, Options& o) {
  c.add("--preset", &o.preset, "tiny | small | paper (other options override it)");
  c.add("--variant", &o.variant, "AFT variant: local | full | simple");
  c.add("--dim", &o.dim, "model width");
  c.add("--layers", &o.layers, "number of AFT blocks");
  c.add("--mlp-hidden", &o.mlp_hidden, "hidden width of each block's MLP");
  c.add("--window", &o.window, "AFT-local window (sub-pixels)");
  c.add("--bias", &o.bias, "position bias of local/full: factorized | full");
  c.add("--bias-dim", &o.bias_dim, "d' of the factorised position bias");
  c.add("--dropout", &o.dropout, "dropout probability");
  c.add("--batch", &o.batch, "images per optimizer step");
  c.add("--micro-batch", &o.micro_batch, "images per forward/backward pass, gradients accumulated (0: --batch)");
  c.add("--lr", &o.train.lr, "peak learning rate (AdamW)");
  c.add("--weight-decay", &o.train.weight_decay, "AdamW weight decay on the linear layers' weights (not on embeddings, norms, biases, position biases)");
  c.add("--seed", &o.seed, "seed of initialisation, batches, augmentation and dropout");
}

void add_train(cli::Cli& c, Options& o) {
  examples::add_schedule_options(c, o.train);
  c.add("--decay", &o.train.decay, "learning-rate decay after warm-up: cosine | linear | constant");
  c.add("--no-augment", &o.no_augment, "train on the images as they are (no flip, no shift)");
  c.add("--eval-images", &o.eval_images, "test images scored by each evaluation (0: all 10,000)");
  c.add("--eval-batch", &o.eval_batch, "images per forward pass when evaluating");
  examples::add_loop_options(c, o.train);
}

void add_sampling(cli::Cli& c, Options& o) {
  c.add("--temperature", &o.temperature, "softmax temperature (> 0)");
  c.add("--top-k", &o.top_k, "sample among the k most likely intensities (0: all 256)");
  c.add("--seed", &o.seed, "sampling seed");
  c.add("--scale", &o.scale, "enlarge each pixel of the PNG to scale x scale");
  c.add("--png", &o.png, "the PNG file to write (default: in the run directory)");
  c.add("--preset", &o.preset, "names the default run directory");
}

nn::AFTLMConfig model_config(const Options& o) {
  return image_model_config({.variant = o.variant, .bias = o.bias, .dim = o.dim, .layers = o.layers,
                             .mlp_hidden = o.mlp_hidden, .window = o.window, .bias_dim = o.bias_dim,
                             .dropout = o.dropout});
}

std::string describe(const Options& o, const nn::AFTLM& model, Device device) {
  std::string mixer = o.variant == "simple" ? "AFT-simple"
                      : fmt::format("AFT-{}{}, {} bias{}", o.variant,
                                    o.variant == "local" ? fmt::format(" (window {})", o.window) : "", o.bias,
                                    o.bias == "factorized" ? fmt::format(" d'={}", o.bias_dim) : "");
  return fmt::format("model: {}, {} layers, width {}, MLP {}, {} parameters, device {}, {} threads", mixer, o.layers,
                     o.dim, o.mlp_hidden, model.num_parameters(), to_string(device), num_threads());
}

int cmd_train(int argc, char** argv) {
  Options o;
  preset_from_argv(o, argc, argv);
  cli::Cli c("cifar10 train", "Trains an autoregressive AFT model of CIFAR-10 images.");
  add_data(c, o);
  add_run(c, o);
  add_model(c, o);
  add_train(c, o);
  if (!c.parse(argc, argv, 2)) return 0;
  Device device = examples::setup_run(o, "cifar10");
  const examples::TrainOptions& t = o.train;
  AFT_CHECK(o.batch >= 1 && t.steps >= 1 && o.micro_batch >= 0, "--batch and --steps must be >= 1");
  Dataset ds = load_cifar10(o.data, true);
  std::fprintf(stderr, "data: %s\n", ds.description.c_str());

  Generator gen(static_cast<uint64_t>(o.seed));
  nn::AFTLMConfig mc = model_config(o);
  nn::AFTLM model(mc, &gen);
  model.to(device);
  nn::AdamW opt = make_optimizer(model, t.lr, t.weight_decay);
  nn::LRSchedule sched = examples::lr_schedule(t);
  std::fprintf(stderr, "%s\n", describe(o, model, device).c_str());

  nn::TrainerConfig tc = examples::trainer_config(
      t, o.out, "cifar10", "images", fmt::format("cifar10 {} (AFT-{}, {} layers x {})", o.preset, o.variant, o.layers, o.dim),
      fmt::format("{{\"model\": {}, \"preset\": {}, \"data\": {}, \"batch\": {}, \"lr\": {}, "
                  "\"weight_decay\": {}, \"augment\": {}, \"seed\": {}}}",
                  mc.to_json(), json::quote(o.preset), json::quote(ds.description), o.batch, t.lr, t.weight_decay,
                  o.no_augment ? "false" : "true", o.seed));
  nn::Trainer trainer(model, opt, sched, gen, tc);

  const int64_t B = o.batch;
  auto step = [&](int64_t) -> nn::StepResult {
    // B random training images (with replacement), augmented: every draw comes from gen.
    std::vector<int64_t> idx = randint(0, ds.train.size(), {B}, kInt64, &gen).to_vector<int64_t>();
    Batch b = make_batch(ds.train, idx, o.no_augment ? nullptr : &gen);
    return {train_batch(model, b, B, o.micro_batch, device), B};
  };
  auto eval = [&](int64_t) -> nn::Metrics {
    BpdResult r = bits_per_dim(model, ds.test, device, {.batch = o.eval_batch, .max_images = o.eval_images});
    return {{"test_loss", r.nats / static_cast<double>(r.images * kDims)}, {"test_bpd", r.bpd}};
  };
  return examples::report_training(trainer.fit(step, eval), o.out);
}

int cmd_eval(int argc, char** argv) {
  Options o;
  cli::Cli c("cifar10 eval", "Bits per dimension of a trained model on the CIFAR-10 test set.");
  add_data(c, o);
  add_run(c, o);
  c.add("--max-images", &o.max_images, "score only the first N test images (0: all)");
  c.add("--batch", &o.eval_batch, "images per forward pass");
  c.add("--preset", &o.preset, "names the default run directory");
  if (!c.parse(argc, argv, 2)) return 0;
  Device device = examples::setup_run(o, "cifar10");
  auto model = examples::load_lm(o.out, device, "cifar10");
  Dataset ds = load_cifar10(o.data, false);
  std::fprintf(stderr, "data: %s\n", ds.description.c_str());
  BpdResult r = bits_per_dim(*model, ds.test, device, {.batch = o.eval_batch, .max_images = o.max_images, .progress = true});
  std::printf("test bits/dim %.4f over %lld images (R %.4f, G %.4f, B %.4f) (%.1f s, %.1f images/s)\n", r.bpd,
              (long long)r.images, r.channel_bpd[0], r.channel_bpd[1], r.channel_bpd[2], r.seconds,
              r.images / std::max(r.seconds, 1e-9));
  return 0;
}

// "0-7,12,20-21" -> 0..7, 12, 20, 21.
std::vector<int64_t> parse_index_list(const std::string& s, int64_t n) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t comma = s.find(',', i);
    std::string part = s.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    i = comma == std::string::npos ? s.size() : comma + 1;
    size_t dash = part.find('-', 1);
    try {
      size_t used = 0;
      int64_t a = std::stoll(part, &used), b = a;
      if (dash != std::string::npos) b = std::stoll(part.substr(dash + 1), &used);
      else AFT_CHECK(used == part.size(), "bad");
      AFT_CHECK(a >= 0 && b >= a && b < n, "--images: {} is not a range of test images 0..{}", part, n - 1);
      for (int64_t k = a; k <= b; ++k) out.push_back(k);
    } catch (const std::logic_error&) {
      AFT_ERROR("--images: expected indices and ranges like 0-7,12, got '{}'", s);
    }
  }
  AFT_CHECK(!out.empty() && out.size() <= 1024, "--images: between 1 and 1024 images, got {}", out.size());
  return out;
}

void report_sampling(const SampleStats& st) {
  std::fprintf(stderr, "[%lld images x %lld sub-pixels in %.2f s: %.0f steps/s, %.2f s per batch of images]\n",
               (long long)st.images, (long long)st.steps, st.seconds, st.steps / std::max(st.seconds, 1e-9), st.seconds);
}

int cmd_complete(int argc, char** argv) {
  Options o;
  cli::Cli c("cifar10 complete",
             "Keeps the top half of test images and samples the bottom half; writes originals beside completions.");
  add_data(c, o);
  add_run(c, o);
  add_sampling(c, o);
  c.add("--images", &o.images, "test images to complete: indices and ranges, e.g. 0-7,12");
  c.add("--samples", &o.samples, "completions per image");
  if (!c.parse(argc, argv, 2)) return 0;
  AFT_CHECK(o.samples >= 1 && o.samples <= 64, "--samples must be in [1, 64], got {}", o.samples);
  Device device = examples::setup_run(o, "cifar10");
  auto model = examples::load_lm(o.out, device, "cifar10");
  Dataset ds = load_cifar10(o.data, false);
  std::vector<int64_t> which = parse_index_list(o.images, ds.test.size());
  const int64_t n = static_cast<int64_t>(which.size()), S = o.samples, keep = kDims / 2;  // rows 0..15
  // Image i's S completions are batch rows i·S .. i·S + S − 1, all drawn together.
  std::vector<uint8_t> prefix;
  for (int64_t i : which)
    for (int64_t s = 0; s < S; ++s) prefix.insert(prefix.end(), ds.test.image(i), ds.test.image(i) + keep);
  Generator gen(static_cast<uint64_t>(o.seed));
  SampleStats st;
  std::vector<uint8_t> done = generate(*model, prefix, n * S, keep, device, gen,
                                       {.temperature = o.temperature, .top_k = o.top_k, .progress = true}, &st);
  report_sampling(st);
  // One row per image: the original, then its completions.
  std::vector<const uint8_t*> tiles;
  for (int64_t i = 0; i < n; ++i) {
    tiles.push_back(ds.test.image(which[i]));
    for (int64_t s = 0; s < S; ++s) tiles.push_back(done.data() + (i * S + s) * kDims);
  }
  std::string path = o.png.empty() ? o.out + "/completions.png" : o.png;
  png::write_png(path, png::tile_grid(tiles, kSide, kSide, 3, 1 + S, o.scale));
  std::printf("wrote %s: %lld test images (rows: the original, then %lld completions of its bottom half)\n",
              path.c_str(), (long long)n, (long long)S);
  return 0;
}

int cmd_sample(int argc, char** argv) {
  Options o;
  cli::Cli c("cifar10 sample", "Draws images from a trained model and writes them as a PNG grid.");
  add_run(c, o);
  add_sampling(c, o);
  c.add("--count", &o.count, "images to draw (together, as one batch)");
  c.add("--cols", &o.cols, "images per row of the grid (0: about square)");
  if (!c.parse(argc, argv, 2)) return 0;
  AFT_CHECK(o.count >= 1 && o.count <= 1024, "--count must be in [1, 1024], got {}", o.count);
  Device device = examples::setup_run(o, "cifar10");
  auto model = examples::load_lm(o.out, device, "cifar10");
  Generator gen(static_cast<uint64_t>(o.seed));
  SampleStats st;
  std::vector<uint8_t> imgs = generate(*model, {}, o.count, 0, device, gen,
                                       {.temperature = o.temperature, .top_k = o.top_k, .progress = true}, &st);
  report_sampling(st);
  std::vector<const uint8_t*> tiles;
  for (int64_t i = 0; i < o.count; ++i) tiles.push_back(imgs.data() + i * kDims);
  int64_t cols = o.cols > 0 ? o.cols : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(o.count))));
  std::string path = o.png.empty() ? o.out + "/samples.png" : o.png;
  png::write_png(path, png::tile_grid(tiles, kSide, kSide, 3, cols, o.scale));
  std::printf("wrote %s: %lld samples\n", path.c_str(), (long long)o.count);
  return 0;
}

// ---- bench: training images/s of this program and of the same model in PyTorch

using examples::now_s;

// Runs bench/cifar10_torch.py with the same model and batch; returns its images/s (0 on failure).
double run_torch(const Options& o) {
  std::string cmd = fmt::format(
      "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {} {} --threads {} --dim {} --layers {} --mlp-hidden {} "
      "--variant {} --window {} --bias {} --bias-dim {} --dropout {} --batch {} --micro-batch {} --lr {} --weight-decay {} --steps {} "
      "--warmup-steps {} --seed {} --aft-impl {}",
      o.python, o.script, num_threads(), o.dim, o.layers, o.mlp_hidden, o.variant, o.window, o.bias, o.bias_dim,
      o.dropout, o.batch, o.micro_batch, o.train.lr, o.train.weight_decay, o.bench_steps, o.bench_warmup, o.seed, o.torch_impl);
  std::printf("\nrunning: %s\n", cmd.c_str());
  std::fflush(stdout);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    std::printf("  could not run PyTorch\n");
    return 0;
  }
  double ips = 0;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    if (line.rfind("images_per_s ", 0) == 0) ips = std::atof(line.c_str() + 13);
    std::printf("  torch: %s", line.c_str());
  }
  int rc = pclose(p);
  if (rc != 0) std::printf("  PyTorch script exited with status %d\n", rc);
  return ips;
}

int cmd_bench(int argc, char** argv) {
  Options o;
  preset_from_argv(o, argc, argv);
  o.script = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "bench" / "cifar10_torch.py";
  cli::Cli c("cifar10 bench",
             "Training images/s on random images (forward, backward, clipping, AdamW), and with --torch the same "
             "model in PyTorch (bench/cifar10_torch.py) measured right after, with the same threads.");
  add_run(c, o);
  add_model(c, o);
  c.add("--steps", &o.bench_steps, "timed training steps");
  c.add("--warmup-steps", &o.bench_warmup, "untimed steps first");
  c.add("--torch", &o.torch, "also run the PyTorch twin and print both");
  c.add("--python", &o.python, "the Python that has PyTorch");
  c.add("--script", &o.script, "the PyTorch twin");
  c.add("--torch-impl", &o.torch_impl, "the twin's AFT-local: blocked (prefix sums + W x 2W blocks) | dense (T x T)");
  if (!c.parse(argc, argv, 2)) return 0;
  AFT_CHECK(o.bench_steps >= 1 && o.bench_warmup >= 0 && o.batch >= 1, "--steps and --batch must be >= 1");
  Device device = examples::setup_run(o, "cifar10");
  Generator gen(static_cast<uint64_t>(o.seed));
  nn::AFTLM model(model_config(o), &gen);
  model.to(device);
  nn::AdamW opt = make_optimizer(model, o.train.lr, o.train.weight_decay);
  std::printf("aft: %s, batch %lld\n", describe(o, model, device).c_str(), (long long)o.batch);
  // Random images, augmented like training batches.
  Images data;
  for (int64_t v : randint(0, 256, {64 * kDims}, kInt64, &gen).to_vector<int64_t>())
    data.pixels.push_back(static_cast<uint8_t>(v));
  data.labels.assign(64, 0);
  // Waits for the device: reading a value back finishes every queued kernel.
  auto sync = [&] { (void)model.parameters().front().reshape({-1}).narrow(0, 0, 1).item(); };
  double t_start = 0;
  for (int64_t s = 0; s < o.bench_warmup + o.bench_steps; ++s) {
    if (s == o.bench_warmup) {
      sync();
      t_start = now_s();
    }
    const double t0 = now_s();
    std::vector<int64_t> idx = randint(0, data.size(), {o.batch}, kInt64, &gen).to_vector<int64_t>();
    Batch b = make_batch(data, idx, &gen);
    double loss = train_batch(model, b, o.batch, o.micro_batch, device);  // reads the loss: a sync
    if (o.train.clip > 0) nn::clip_grad_norm(model.parameters(), o.train.clip);
    opt.step();
    opt.zero_grad();
    std::printf("  step %lld: loss %.4f, %.3f s%s\n", (long long)s, loss, now_s() - t0,
                s < o.bench_warmup ? " (warm-up)" : "");
    std::fflush(stdout);
  }
  sync();
  const double ours = static_cast<double>(o.batch * o.bench_steps) / (now_s() - t_start);
  std::printf("aft images_per_s %.2f (over %lld steps)\n", ours, (long long)o.bench_steps);
  if (o.torch) {
    double theirs = run_torch(o);
    std::printf("\ntraining images/s, %d threads, batch %lld:  aft %.2f | PyTorch %.2f", num_threads(),
                (long long)o.batch, ours, theirs);
    if (theirs > 0) std::printf("  (aft/PyTorch %.2fx)", ours / theirs);
    std::printf("\n");
  }
  return 0;
}

const char* const kUsage =
    "usage: cifar10 <command> [options]\n"
    "An autoregressive AFT model of CIFAR-10 images: 3,072 sub-pixels per image, each a 256-way class.\n\n"
    "commands:\n"
    "  train     train a model (--data: the CIFAR-10 binary directory or cifar-10-binary.tar.gz)\n"
    "  eval      bits per dimension on the test set, and per channel\n"
    "  complete  sample the bottom halves of test images; a PNG of originals beside completions\n"
    "  sample    unconditional samples as a PNG grid\n"
    "  bench     training images/s, with --torch beside the same model in PyTorch\n\n"
    "Run `cifar10 <command> --help` for its options.\n";

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program(argc, argv, "cifar10", kUsage,
                               {{"train", cmd_train},
                                {"eval", cmd_eval},
                                {"complete", cmd_complete},
                                {"sample", cmd_sample},
                                {"bench", cmd_bench}});
}
