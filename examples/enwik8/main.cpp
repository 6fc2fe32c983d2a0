// examples/enwik8/main.cpp: a character-level AFT language model on Enwik8 (or any byte file,
// or the corpus embedded in the program): train, evaluate in bits per character, sample.
//
//   enwik8 train  [--preset tiny|small|paper] [--data FILE] [--device cpu|cuda] [--out DIR] ...
//   enwik8 eval   --out DIR [--split valid|test] [--data FILE] ...
//   enwik8 sample --out DIR [--prompt TEXT] [--length N] [--temperature X] [--top-k K]
//
// The model is nn::AFTLM (byte embedding + learned positions, L pre-norm AFT blocks, final
// LayerNorm, output projection), causal, with the AFT variant chosen by --variant. Training
// draws random windows of context+1 bytes from the training split; the loss is the mean
// cross-entropy of the next byte. Evaluation scores every byte of a split but the first:
// bits per character = Σ −log2 p(byte | the bytes before it) / count.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../common/cli.h"
#include "../common/lm_run.h"
#include "../common/program.h"
#include "aft.h"
#include "bpc.h"
#include "corpus.h"
#include "nn/aft_lm.h"
#include "nn/optim/optim.h"

using namespace aft;

namespace {

// Options of every command (run directory, device, threads, seed, preset: examples/common/program.h).
struct Options : examples::RunOptions {
  // data
  std::string data, dataset = "auto";
  // model
  std::string variant = "local", bias = "factorized";
  int64_t context = 128, dim = 128, layers = 4, mlp_hidden = 512, window = 32, bias_dim = 32;
  bool tie = false;
  double dropout = 0.0;
  // training
  int64_t batch = 16, eval_bytes = 65536;
  examples::TrainOptions train{.steps = 2000, .warmup = 100, .eval_every = 250, .checkpoint_every = 500,
                               .log_every = 10, .lr = 2e-3, .min_lr_ratio = 0.1, .weight_decay = 0.1, .clip = 1.0};
  // evaluation and sampling
  std::string split = "valid", prompt = "The ";
  int64_t stride = 0, max_bytes = 0, length = 400, top_k = 0, eval_batch = 8;
  double temperature = 1.0;
};

// Presets: tiny trains in minutes on 2 CPU cores; small is for a GPU; paper is the AFT paper's
// Enwik8 setup (Table 4: AFT-local-32, 24 layers of width 256, context 1024, factorised bias
// d' = 256, weight decay 0.5, batch 128, AdamW lr 3e-3 with warm-up, dropout 0.1).
void apply_preset(Options& o, const std::string& name) {
  o.preset = name;
  examples::TrainOptions& t = o.train;
  if (name == "tiny") {
    o.context = 128; o.dim = 128; o.layers = 4; o.mlp_hidden = 512; o.window = 32; o.bias_dim = 32;
    o.batch = 16; t.lr = 2e-3; t.warmup = 100; t.steps = 2000; t.weight_decay = 0.1; o.dropout = 0.0;
    t.eval_every = 250; o.eval_bytes = 65536;
  } else if (name == "small") {
    o.context = 512; o.dim = 512; o.layers = 8; o.mlp_hidden = 2048; o.window = 32; o.bias_dim = 128;
    o.batch = 32; t.lr = 1e-3; t.warmup = 500; t.steps = 20000; t.weight_decay = 0.1; o.dropout = 0.1;
    t.eval_every = 1000; o.eval_bytes = 1 << 20;
  } else if (name == "paper") {
    o.context = 1024; o.dim = 256; o.layers = 24; o.mlp_hidden = 1024; o.window = 32; o.bias_dim = 256;
    o.batch = 128; t.lr = 3e-3; t.warmup = 2000; t.steps = 100000; t.weight_decay = 0.5; o.dropout = 0.1;
    t.eval_every = 2000; o.eval_bytes = 1 << 20;
  } else {
    AFT_ERROR("--preset must be tiny, small or paper, got '{}'", name);
  }
}

void add_common(cli::Cli& c, Options& o) {
  c.add("--data", &o.data, "a byte file (raw, .gz or .zip); empty: the embedded corpus");
  c.add("--dataset", &o.dataset, "auto | enwik8 (must be the 100,000,000-byte file) | bytes (90/5/5 split)");
  c.add("--out", &o.out, "run directory (checkpoint, metrics, curves); default runs/enwik8-<preset>");
  examples::add_device_options(c, o);
}

void add_model_and_train(cli::Cli& c, Options& o) {
  c.add("--preset", &o.preset, "tiny | small | paper (other options override it)");
  c.add("--variant", &o.variant, "AFT variant: local | full | simple");
  c.add("--context", &o.context, "context length T (bytes)");
  c.add("--dim", &o.dim, "model width");
  c.add("--layers", &o.layers, "number of AFT blocks");
  c.add("--mlp-hidden", &o.mlp_hidden, "hidden width of each block's MLP");
  c.add("--window", &o.window, "AFT-local window");
  c.add("--bias", &o.bias, "position bias: factorized | full");
  c.add("--bias-dim", &o.bias_dim, "d' of the factorised position bias");
  c.add("--tie", &o.tie, "tie the output projection to the byte embedding");
  c.add("--dropout", &o.dropout, "dropout probability");
  c.add("--batch", &o.batch, "sequences per step");
  examples::add_schedule_options(c, o.train);
  c.add("--lr", &o.train.lr, "peak learning rate (AdamW)");
  c.add("--decay", &o.train.decay, "learning-rate decay after warm-up: cosine | linear | constant");
  c.add("--weight-decay", &o.train.weight_decay, "AdamW weight decay (not on norms, biases, position biases)");
  c.add("--seed", &o.seed, "seed of initialisation, batches and dropout");
  c.add("--eval-bytes", &o.eval_bytes, "bytes of the validation split scored by each evaluation (0: all)");
  examples::add_loop_options(c, o.train);
}

nn::AFTLMConfig model_config(const Options& o) {
  nn::AFTLMConfig c;
  c.vocab = 256;
  c.context = o.context;
  c.dim = o.dim;
  c.layers = o.layers;
  c.mlp_hidden = o.mlp_hidden;
  c.mixer = examples::lm_mixer(o.variant, o.window, o.bias, o.bias_dim);
  c.dropout = o.dropout;
  c.tie_embeddings = o.tie;
  return c;
}

enwik8::Corpus load(const Options& o) {
  enwik8::Corpus c = o.data.empty() ? enwik8::embedded_corpus() : enwik8::load_corpus(o.data, o.dataset);
  std::fprintf(stderr, "data: %s\n", c.description.c_str());
  return c;
}

int cmd_train(int argc, char** argv) {
  Options o;
  examples::preset_from_argv(argc, argv, [&](const std::string& p) { apply_preset(o, p); });
  cli::Cli c("enwik8 train", "Trains a character-level AFT language model.");
  add_common(c, o);
  add_model_and_train(c, o);
  if (!c.parse(argc, argv, 2)) return 0;
  Device device = examples::setup_run(o, "enwik8");
  const examples::TrainOptions& t = o.train;
  enwik8::Corpus corpus = load(o);
  std::span<const uint8_t> train = corpus.split("train"), valid = corpus.split("valid");
  AFT_CHECK(static_cast<int64_t>(train.size()) > o.context + 1,
            "the training split ({} bytes) is shorter than the context + 1 ({})", train.size(), o.context + 1);
  AFT_CHECK(o.batch >= 1 && t.steps >= 1, "--batch and --steps must be >= 1");

  Generator gen(static_cast<uint64_t>(o.seed));
  nn::AFTLMConfig mc = model_config(o);
  nn::AFTLM model(mc, &gen);
  model.to(device);
  nn::AdamW opt(nn::make_param_groups(model, t.weight_decay),
                {.lr = t.lr, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = t.weight_decay});
  nn::LRSchedule sched = examples::lr_schedule(t);
  std::fprintf(stderr, "model: AFT-%s, %lld layers, width %lld, context %lld, %lld parameters, device %s, %d threads\n",
               o.variant.c_str(), (long long)o.layers, (long long)o.dim, (long long)o.context,
               (long long)model.num_parameters(), to_string(device).c_str(), num_threads());

  nn::TrainerConfig tc = examples::trainer_config(
      t, o.out, "enwik8", "tokens", fmt::format("enwik8 {} (AFT-{}, {} layers x {})", o.preset, o.variant, o.layers, o.dim),
      fmt::format("{{\"model\": {}, \"preset\": {}, \"data\": {}, \"batch\": {}, \"lr\": {}, "
                  "\"weight_decay\": {}, \"seed\": {}}}",
                  mc.to_json(), json::quote(o.preset), json::quote(corpus.description), o.batch, t.lr, t.weight_decay,
                  o.seed));
  nn::Trainer trainer(model, opt, sched, gen, tc);

  const int64_t B = o.batch, T = o.context;
  auto step = [&](int64_t) -> nn::StepResult {
    // B windows of T + 1 bytes at random offsets: inputs are the first T, targets the last T.
    std::vector<int64_t> starts = randint(0, static_cast<int64_t>(train.size()) - T, {B}, kInt64, &gen).to_vector<int64_t>();
    std::vector<int64_t> x(static_cast<size_t>(B * T)), y(static_cast<size_t>(B * T));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        x[b * T + t] = train[starts[b] + t];
        y[b * T + t] = train[starts[b] + t + 1];
      }
    Tensor xs = from_vector<int64_t>(x, {B, T}).to(device), ys = from_vector<int64_t>(y, {B * T}).to(device);
    Tensor loss = cross_entropy(model.forward(xs).reshape({B * T, 256}), ys);
    loss.backward();
    return {loss.item(), B * T};
  };
  auto eval = [&](int64_t) -> nn::Metrics {
    enwik8::BpcResult r = enwik8::bits_per_char(model, valid, device, {.stride = T / 2, .batch = o.eval_batch,
                                                                        .max_bytes = o.eval_bytes});
    return {{"valid_bpc", r.bpc}};
  };
  return examples::report_training(trainer.fit(step, eval), o.out);
}

int cmd_eval(int argc, char** argv) {
  Options o;
  cli::Cli c("enwik8 eval", "Bits per character of a trained model on a whole split.");
  add_common(c, o);
  c.add("--split", &o.split, "valid | test");
  c.add("--stride", &o.stride, "window step (0: context/2); every byte is scored once, with at least context - stride bytes before it");
  c.add("--max-bytes", &o.max_bytes, "score only the first N bytes of the split (0: all)");
  c.add("--batch", &o.eval_batch, "windows per forward pass");
  c.add("--preset", &o.preset, "names the default run directory");
  if (!c.parse(argc, argv, 2)) return 0;
  Device device = examples::setup_run(o, "enwik8");
  auto model = examples::load_lm(o.out, device, "enwik8");
  enwik8::Corpus corpus = load(o);
  int64_t T = model->config().context;
  enwik8::BpcResult r = enwik8::bits_per_char(*model, corpus.split(o.split), device,
                                               {.stride = o.stride > 0 ? o.stride : T / 2, .batch = o.eval_batch,
                                                .max_bytes = o.max_bytes, .progress = true});
  std::printf("%s bpc %.4f over %lld bytes (%.1f s, %.0f bytes/s)\n", o.split.c_str(), r.bpc, (long long)r.count,
              r.seconds, r.count / std::max(r.seconds, 1e-9));
  return 0;
}

int cmd_sample(int argc, char** argv) {
  Options o;
  cli::Cli c("enwik8 sample", "Generates text from a trained model, one byte at a time.");
  add_common(c, o);
  c.add("--prompt", &o.prompt, "text to continue");
  c.add("--length", &o.length, "bytes to generate");
  c.add("--temperature", &o.temperature, "softmax temperature (> 0)");
  c.add("--top-k", &o.top_k, "sample among the k most likely bytes (0: all 256)");
  c.add("--seed", &o.seed, "sampling seed");
  c.add("--preset", &o.preset, "names the default run directory");
  if (!c.parse(argc, argv, 2)) return 0;
  AFT_CHECK(o.temperature > 0, "--temperature must be > 0, got {}", o.temperature);
  AFT_CHECK(o.top_k >= 0 && o.top_k <= 256, "--top-k must be in [0, 256], got {}", o.top_k);
  Device device = examples::setup_run(o, "enwik8");
  auto model = examples::load_lm(o.out, device, "enwik8");
  Generator gen(static_cast<uint64_t>(o.seed));
  enwik8::SampleStats st = enwik8::sample(*model, o.prompt, o.length, o.temperature, o.top_k, device, gen, stdout);
  std::fprintf(stderr, "\n[%lld bytes in %.2f s: %.0f bytes/s]\n", (long long)st.generated, st.seconds,
               st.generated / std::max(st.seconds, 1e-9));
  return 0;
}

const char* const kUsage =
    "usage: enwik8 <command> [options]\n"
    "A character-level AFT language model: bytes in, the next byte's distribution out.\n\n"
    "commands:\n"
    "  train    train a model (default data: the corpus embedded in this program)\n"
    "  eval     bits per character on the validation or test split\n"
    "  sample   generate text from a prompt\n\n"
    "Run `enwik8 <command> --help` for its options.\n";

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program(argc, argv, "enwik8", kUsage,
                               {{"train", cmd_train}, {"eval", cmd_eval}, {"sample", cmd_sample}});
}
