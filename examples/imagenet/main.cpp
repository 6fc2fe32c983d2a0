// examples/imagenet/main.cpp: image classification with AFT-conv on an ImageNet-style data set
// (class folders of JPEGs: ImageNet, Imagenette, or any subset): train, evaluate, predict.
//
//   imagenet train   --data ROOT [--preset tiny|deit-tiny|deit-small] [--variant conv|full] ...
//   imagenet eval    --out DIR [--data ROOT] [--split val] [--image-size S]
//   imagenet predict --out DIR [--image-size S] FILE.jpg ...
//
// The model (model.h) is the paper's §5.3: patch embedding, L pre-LN AFT-conv blocks, global
// average pooling, LayerNorm, linear head; or AFT-full with a class token (--variant full).
// Training follows DeiT where it fits a small data set: random-resized crops and flips,
// AdamW with weight decay 0.05, cosine schedule with warm-up, label smoothing 0.1, stochastic
// depth. The loss is the mean label-smoothed cross-entropy of the batch. docs/imagenet.md has
// the data layout, the presets and the outputs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "../common/cli.h"
#include "../common/files.h"
#include "../common/program.h"
#include "../common/run_dir.h"
#include "aft.h"
#include "evaluate.h"
#include "loader.h"
#include "model.h"
#include "nn/run/metrics.h"
#include "nn/optim/optim.h"

using namespace aft;
using namespace aft::imagenet;

namespace {

// Options of every command (run directory, device, threads, seed, preset: examples/common/program.h).
struct Options : examples::RunOptions {
  // data
  std::string data, train_split = "train", val_split = "val";
  bool synthetic = false;
  int64_t workers = 2, prefetch = 4;
  // model
  ModelConfig model;
  // training (the learning rate decays along a cosine after the warm-up)
  int64_t batch = 64, epochs = 0, eval_images = 0;
  double label_smoothing = 0.1;
  examples::TrainOptions train{.steps = 1000, .warmup = 100, .eval_every = 250, .checkpoint_every = 250,
                               .log_every = 10, .lr = 1e-3, .min_lr_ratio = 0.01, .weight_decay = 0.05, .clip = 0};
  // evaluation and prediction
  std::string split = "val";
  int64_t image_size = 0, top = 5, max_images = 0;
};

// Presets. tiny: 64×64 images, 8×8 patches (an 8×8 grid), trains in minutes on 2 CPU cores.
// deit-tiny / deit-small: the paper's AFT-conv models at DeiT's sizes, 224×224, 16×16 patches
// (a 14×14 grid), for a GPU; DeiT's learning rate 5e-4 · batch / 512.
void apply_preset(Options& o, const std::string& name) {
  o.preset = name;
  ModelConfig& m = o.model;
  examples::TrainOptions& t = o.train;
  m.variant = "conv";
  m.mlp_ratio = 4;
  m.drop_path = 0.1;
  if (name == "tiny") {
    m.image_size = 64; m.patch = 8; m.dim = 128; m.layers = 4; m.heads = 8; m.kernel = 5;
    o.batch = 64; t.lr = 1e-3; t.warmup = 50; t.steps = 600; t.eval_every = 200; t.checkpoint_every = 200;
  } else if (name == "deit-tiny") {
    m.image_size = 224; m.patch = 16; m.dim = 192; m.layers = 12; m.heads = 32; m.kernel = 11;
    o.batch = 256; t.lr = 5e-4 * 256 / 512; t.warmup = 100; t.steps = 5000; t.eval_every = 500; t.checkpoint_every = 500;
  } else if (name == "deit-small") {
    m.image_size = 224; m.patch = 16; m.dim = 384; m.layers = 12; m.heads = 16; m.kernel = 11;
    o.batch = 256; t.lr = 5e-4 * 256 / 512; t.warmup = 100; t.steps = 5000; t.eval_every = 500; t.checkpoint_every = 500;
  } else {
    AFT_ERROR("--preset must be tiny, deit-tiny or deit-small, got '{}'", name);
  }
}

void add_common(cli::Cli& c, Options& o) {
  c.add("--out", &o.out, "run directory (checkpoint, metrics, curves, evaluation files); default runs/imagenet-<preset>");
  examples::add_device_options(c, o);
}

void add_loader(cli::Cli& c, Options& o) {
  c.add("--workers", &o.workers, "JPEG decoding threads");
  c.add("--prefetch", &o.prefetch, "batches decoded ahead of the model");
}

void add_train(cli::Cli& c, Options& o) {
  ModelConfig& m = o.model;
  c.add("--data", &o.data, "data root holding train/<class>/*.JPEG and val/<class>/*.JPEG (required unless --synthetic)");
  c.add("--train-split", &o.train_split, "training folder under the root");
  c.add("--val-split", &o.val_split, "validation folder under the root");
  c.add("--synthetic", &o.synthetic, "random images and labels instead of --data (to time the model alone)");
  c.add("--preset", &o.preset, "tiny | deit-tiny | deit-small (other options override it)");
  c.add("--variant", &m.variant, "conv (AFT-conv, no class token) | full (AFT-full with a class token)");
  c.add("--image-size", &m.image_size, "training image size S (a multiple of --patch)");
  c.add("--patch", &m.patch, "patch size p");
  c.add("--dim", &m.dim, "model width D");
  c.add("--layers", &m.layers, "number of AFT blocks L");
  c.add("--heads", &m.heads, "AFT-conv heads (divides --dim)");
  c.add("--kernel", &m.kernel, "AFT-conv kernel size (odd)");
  c.add("--mlp-ratio", &m.mlp_ratio, "MLP hidden width / D");
  c.add("--drop-path", &m.drop_path, "stochastic depth of the last block (rising linearly from 0)");
  c.add("--bias", &m.bias, "AFT-full position bias: full | factorized");
  c.add("--bias-dim", &m.bias_dim, "AFT-full: d' of a factorised bias");
  c.add("--batch", &o.batch, "images per step");
  c.add("--epochs", &o.epochs, "if > 0: train this many epochs (sets --steps)");
  examples::add_schedule_options(c, o.train);
  c.add("--lr", &o.train.lr, "peak learning rate (AdamW)");
  c.add("--weight-decay", &o.train.weight_decay, "AdamW weight decay (not on norms, biases, AFT kernels, embeddings)");
  c.add("--label-smoothing", &o.label_smoothing, "label smoothing of the cross-entropy");
  c.add("--seed", &o.seed, "seed of initialisation, data order, augmentation and stochastic depth");
  c.add("--eval-images", &o.eval_images, "validation images per evaluation, spread over the classes (0: all)");
  examples::add_loop_options(c, o.train);
}

std::string json_strings(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + json::quote(v[i]);
  return s + "]";
}

// A run directory's configuration (written by `train`).
struct Run {
  ModelConfig model;
  std::vector<std::string> classes, names;
  std::string data;
};

Run read_run(const std::string& out) {
  json::Value cfg = examples::read_run_config(out, "imagenet");
  const std::string path = nn::RunPaths(out).checkpoint;
  Run r;
  r.model = ModelConfig::from_json(*cfg.find("model"));
  auto strings = [&](const char* key) {
    const json::Value* v = cfg.find(key);
    AFT_CHECK(v && v->is_array(), "{}: the configuration has no \"{}\" list", path, key);
    std::vector<std::string> s;
    for (const auto& x : v->items) s.push_back(x.text);
    return s;
  };
  r.classes = strings("classes");
  r.names = strings("names");
  AFT_CHECK(static_cast<int64_t>(r.classes.size()) == r.model.classes && r.names.size() == r.classes.size(),
            "{}: {} class names for a model of {} classes", path, r.classes.size(), r.model.classes);
  if (const json::Value* d = cfg.find("data"); d && d->is_string()) r.data = d->text;
  return r;
}

std::shared_ptr<ImageAFT> load_model(const std::string& out, const Run& run, Device device) {
  auto model = std::make_shared<ImageAFT>(run.model);
  examples::load_run_weights(out, *model, device);
  return model;
}

// n images of d spread evenly over it (so every class is represented); all when n <= 0.
Dataset spread_subset(const Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  Dataset s = d;
  s.paths.clear();
  s.labels.clear();
  for (int64_t i = 0; i < n; ++i) {
    size_t j = static_cast<size_t>(i * d.size() / n);
    s.paths.push_back(d.paths[j]);
    s.labels.push_back(d.labels[j]);
  }
  return s;
}

// Batches of `batch` images at size x size, decoded by --workers threads, --prefetch batches
// ahead; for evaluation (train false): one pass over n images in order, no augmentation.
LoaderConfig loader_config(const Options& o, int64_t size, int64_t batch, bool train, int64_t n = 0) {
  AFT_CHECK(o.workers >= 1 && o.workers <= 256, "--workers must be in [1, 256], got {}", o.workers);
  AFT_CHECK(o.prefetch >= 1 && o.prefetch <= 1024, "--prefetch must be in [1, 1024], got {}", o.prefetch);
  AFT_CHECK(batch >= 1 && batch <= (int64_t{1} << 20), "--batch must be in [1, 2^20], got {}", batch);
  LoaderConfig lc;
  lc.batch = batch;
  lc.transform.size = size;
  lc.transform.train = train;
  lc.workers = static_cast<int>(o.workers);
  lc.prefetch = static_cast<int>(o.prefetch);
  if (!train) lc.max_batches = (n + batch - 1) / batch;
  return lc;
}

void report_skipped(const char* what, const std::vector<Loader::Failure>& f) {
  if (!f.empty()) std::fprintf(stderr, "%s: %zu unreadable files were skipped (listed above)\n", what, f.size());
}

int cmd_train(int argc, char** argv) {
  Options o;
  apply_preset(o, "tiny");
  examples::preset_from_argv(argc, argv, [&](const std::string& p) { apply_preset(o, p); });
  cli::Cli c("imagenet train", "Trains an AFT-conv (or AFT-full) image classifier on class folders of JPEGs.");
  add_common(c, o);
  add_loader(c, o);
  add_train(c, o);
  if (!c.parse(argc, argv, 2)) return 0;
  Device device = examples::setup_run(o, "imagenet");
  examples::TrainOptions& t = o.train;
  AFT_CHECK(o.synthetic || !o.data.empty(), "give the data root with --data ROOT (or --synthetic to time the model)");
  AFT_CHECK(o.batch >= 1, "--batch must be >= 1");

  Dataset train, val;
  if (o.synthetic) {
    train.classes = train.names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  } else {
    train = scan_image_folder(o.data, o.train_split);
    std::fprintf(stderr, "data: %s\n", train.description().c_str());
    val = scan_image_folder(o.data, o.val_split, &train.classes);
    std::fprintf(stderr, "data: %s\n", val.description().c_str());
  }
  o.model.classes = static_cast<int64_t>(train.classes.size());
  o.model.check();
  const int64_t per_epoch = o.synthetic ? 1 : train.size() / o.batch;
  AFT_CHECK(o.synthetic || per_epoch >= 1, "{} training images are fewer than one batch of {}", train.size(), o.batch);
  AFT_CHECK(o.epochs >= 0 && o.epochs <= INT64_MAX / std::max<int64_t>(per_epoch, 1),
            "--epochs must be in [0, {}] ({} batches per epoch), got {}", INT64_MAX / std::max<int64_t>(per_epoch, 1),
            per_epoch, o.epochs);
  if (o.epochs > 0) t.steps = o.epochs * per_epoch;
  AFT_CHECK(t.steps >= 1, "--steps must be >= 1");

  Generator init_gen(static_cast<uint64_t>(o.seed)), gen(static_cast<uint64_t>(o.seed) + 1);
  ImageAFT model(o.model, &init_gen, &gen);
  model.to(device);
  nn::AdamW opt(nn::make_param_groups(model, t.weight_decay,
                                      {nn::ParamKind::Bias, nn::ParamKind::Norm, nn::ParamKind::PositionBias,
                                       nn::ParamKind::Embedding}),
                {.lr = t.lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = t.weight_decay});
  nn::LRSchedule sched = examples::lr_schedule(t);
  const ModelConfig& m = o.model;
  std::fprintf(stderr,
               "model: AFT-%s, %lld layers, width %lld, %lldx%lld images in %lldx%lld patches%s, %lld parameters, "
               "device %s, %d threads, %lld decoding workers\n",
               m.variant.c_str(), (long long)m.layers, (long long)m.dim, (long long)m.image_size, (long long)m.image_size,
               (long long)m.patch, (long long)m.patch,
               m.variant == "conv" ? fmt::format(", {} heads, kernel {}", m.heads, m.kernel).c_str() : "",
               (long long)model.num_parameters(), to_string(device).c_str(), num_threads(), (long long)o.workers);

  nn::TrainerConfig tc = examples::trainer_config(
      t, o.out, "imagenet", "images",
      fmt::format("imagenet {} (AFT-{}, {} layers x {}, {}px)", o.preset, m.variant, m.layers, m.dim, m.image_size),
      fmt::format("{{\"model\": {}, \"classes\": {}, \"names\": {}, \"preset\": {}, \"data\": {}, \"batch\": {}, "
                  "\"lr\": {}, \"weight_decay\": {}, \"label_smoothing\": {}, \"seed\": {}}}",
                  m.to_json(), json_strings(train.classes), json_strings(train.names), json::quote(o.preset),
                  json::quote(o.synthetic ? "synthetic" : std::filesystem::absolute(o.data).string()), o.batch, t.lr,
                  t.weight_decay, o.label_smoothing, o.seed));
  nn::Trainer trainer(model, opt, sched, gen, tc);

  // Training batches: step s is batch s of the loader's stream (an epoch = floor(N / batch)
  // shuffled batches), so a resumed run continues with the same images and augmentations.
  std::unique_ptr<Loader> loader;
  if (!o.synthetic) {
    LoaderConfig lc = loader_config(o, m.image_size, o.batch, true);
    lc.shuffle = true;
    lc.drop_last = true;
    lc.seed = static_cast<uint64_t>(o.seed);
    loader = std::make_unique<Loader>(train, lc);
  }
  auto step = [&](int64_t s) -> nn::StepResult {
    Tensor images, labels;
    if (o.synthetic) {
      images = randn({o.batch, m.image_size, m.image_size, 3}, kFloat32, &gen);
      labels = randint(0, m.classes, {o.batch}, kInt64, &gen);
    } else {
      if (loader->position() != s) loader->seek(s);
      std::optional<Batch> b = loader->next();
      while (b->labels.size(0) == 0) b = loader->next();  // a batch of unreadable files only
      images = b->images;
      labels = b->labels;
    }
    Tensor loss = cross_entropy(model.forward(images.to(device)), labels.to(device), -100, o.label_smoothing);
    loss.backward();
    return {loss.item(), labels.size(0)};
  };
  Dataset val_subset = spread_subset(val, o.eval_images);
  std::vector<Loader::Failure> val_failures;
  auto eval = [&](int64_t) -> nn::Metrics {
    if (o.synthetic) return {};
    Loader vl(val_subset, loader_config(o, m.image_size, o.batch, false, val_subset.size()));
    ClassMetrics r = evaluate(model, vl, device);
    val_failures = vl.failures();
    return {{"valid_loss", r.loss()}, {"valid_top1", r.top1()}, {"valid_top5", r.top5()}};
  };
  nn::TrainResult r = trainer.fit(step, eval);
  const int status = examples::report_training(r, o.out);
  if (loader) report_skipped("training data", loader->failures());
  report_skipped("validation data", val_failures);
  return status;
}

int cmd_eval(int argc, char** argv) {
  Options o;
  o.batch = 64;
  cli::Cli c("imagenet eval", "Top-1, top-5 and per-class accuracy, and the confusion matrix, of a trained model.");
  add_common(c, o);
  add_loader(c, o);
  c.add("--data", &o.data, "data root (default: the one the model was trained on)");
  c.add("--split", &o.split, "folder under the root to evaluate");
  c.add("--image-size", &o.image_size, "evaluation size (0: the training size; AFT-conv runs at any multiple of the patch)");
  c.add("--batch", &o.batch, "images per forward pass");
  c.add("--max-images", &o.max_images, "evaluate this many images spread over the classes (0: all)");
  c.add("--preset", &o.preset, "names the default run directory");
  if (!c.parse(argc, argv, 2)) return 0;
  Device device = examples::setup_run(o, "imagenet");
  Run run = read_run(o.out);
  if (o.data.empty()) o.data = run.data;
  AFT_CHECK(!o.data.empty() && o.data != "synthetic", "give the data root with --data ROOT");
  const int64_t size = o.image_size > 0 ? o.image_size : run.model.image_size;
  AFT_CHECK(size % run.model.patch == 0, "--image-size {} is not a multiple of the patch size {}", size, run.model.patch);
  auto model = load_model(o.out, run, device);
  Dataset data = spread_subset(scan_image_folder(o.data, o.split, &run.classes), o.max_images);
  std::fprintf(stderr, "data: %s; evaluating at %lldx%lld (trained at %lld)\n", data.description().c_str(),
               (long long)size, (long long)size, (long long)run.model.image_size);
  Loader loader(data, loader_config(o, size, o.batch, false, data.size()));
  const double t0 = examples::now_s();
  ClassMetrics r = evaluate(*model, loader, device, 0, true);
  const double secs = examples::now_s() - t0;
  // (The loader throws when every file is unreadable; this guards any other way to see none.)
  AFT_CHECK(r.count > 0, "{}: no image could be evaluated", (std::filesystem::path(o.data) / o.split).string());
  std::vector<double> acc = r.per_class_accuracy();
  std::printf("%s at %lldx%lld: top-1 %.4f, top-5 %.4f, loss %.4f over %lld images (%.1f s, %.0f images/s)\n",
              o.split.c_str(), (long long)size, (long long)size, r.top1(), r.top5(), r.loss(), (long long)r.count, secs,
              r.count / std::max(secs, 1e-9));
  std::printf("per-class accuracy:\n");
  for (size_t i = 0; i < acc.size(); ++i) {
    int64_t n = 0;
    for (int64_t p = 0; p < r.classes; ++p) n += r.confusion[i * static_cast<size_t>(r.classes) + static_cast<size_t>(p)];
    std::printf("  %-12s %-28s %s (%lld images)\n", run.classes[i].c_str(), run.names[i].c_str(),
                std::isnan(acc[i]) ? "   -  " : fmt::format("{:6.2f}%", 100 * acc[i]).c_str(), (long long)n);
  }
  std::string stem = fmt::format("{}/confusion-{}-{}", o.out, std::filesystem::path(o.split).filename().string(), size);
  nn::write_file_atomic(stem + ".csv", confusion_csv(r, run.names));
  nn::write_file_atomic(stem + ".svg", confusion_svg(r, run.names,
                                                     fmt::format("{} at {}x{}: top-1 {:.2f}%, top-5 {:.2f}%", o.split, size,
                                                                 size, 100 * r.top1(), 100 * r.top5())));
  std::printf("confusion matrix: %s.csv, %s.svg\n", stem.c_str(), stem.c_str());
  report_skipped(o.split.c_str(), loader.failures());
  return 0;
}

int cmd_predict(int argc, char** argv) {
  Options o;
  // Arguments that are neither options nor their values are the image files.
  std::vector<std::string> files;
  std::vector<char*> args(argv, argv + 2);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      args.push_back(argv[i]);
      if (a.find('=') == std::string::npos && a != "--help" && i + 1 < argc) args.push_back(argv[++i]);
    } else if (a == "-h") {
      args.push_back(argv[i]);
    } else {
      files.push_back(a);
    }
  }
  cli::Cli c("imagenet predict", "The top classes of image files (imagenet predict --out DIR FILE...).");
  add_common(c, o);
  c.add("--image-size", &o.image_size, "input size (0: the training size)");
  c.add("--top", &o.top, "how many classes to list per image");
  c.add("--preset", &o.preset, "names the default run directory");
  if (!c.parse(static_cast<int>(args.size()), args.data(), 2)) return 0;
  AFT_CHECK(!files.empty(), "give one or more image files: imagenet predict --out DIR FILE...");
  Device device = examples::setup_run(o, "imagenet");
  Run run = read_run(o.out);
  const int64_t S = o.image_size > 0 ? o.image_size : run.model.image_size;
  AFT_CHECK(S % run.model.patch == 0, "--image-size {} is not a multiple of the patch size {}", S, run.model.patch);
  auto model = load_model(o.out, run, device);
  autograd::NoGradGuard no_grad;
  TransformConfig t;
  t.size = S;
  int failed = 0;
  for (const std::string& f : files) {
    Tensor x = empty({1, S, S, 3}, kFloat32);
    try {
      std::vector<uint8_t> bytes = files::read_file_bytes(f);
      load_transformed(bytes.data(), bytes.size(), f, t, 0, 0, 0, x.data<float>());
    } catch (const Error& e) {
      std::fprintf(stderr, "skipped: %s\n", e.what());
      ++failed;
      continue;
    }
    std::vector<double> p = softmax(model->forward(x.to(device)), -1).to_vector<double>();
    std::printf("%s\n", f.c_str());
    for (int64_t k : top_k(p, o.top))
      std::printf("  %6.2f%%  %s (%s)\n", 100 * p[static_cast<size_t>(k)], run.names[static_cast<size_t>(k)].c_str(),
                  run.classes[static_cast<size_t>(k)].c_str());
  }
  if (failed) std::fprintf(stderr, "%d of %zu files could not be read\n", failed, files.size());
  return failed == static_cast<int>(files.size()) ? 1 : 0;
}

const char* const kUsage =
    "usage: imagenet <command> [options]\n"
    "Image classification with AFT-conv on class folders of JPEGs (ImageNet, Imagenette, subsets).\n\n"
    "commands:\n"
    "  train    train a model (--data ROOT with train/<class>/*.JPEG and val/<class>/*.JPEG)\n"
    "  eval     top-1, top-5, per-class accuracy and the confusion matrix (CSV, SVG)\n"
    "  predict  the most likely classes of image files\n\n"
    "Run `imagenet <command> --help` for its options.\n";

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program(argc, argv, "imagenet", kUsage,
                               {{"train", cmd_train}, {"eval", cmd_eval}, {"predict", cmd_predict}});
}
