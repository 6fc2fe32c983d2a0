// tests/test_trainer.cpp: the training loop (nn/run/trainer.h), its metrics log (nn/run/metrics.h)
// and SVG plots (nn/run/plot.h).
//
// The model is a hand-made Module (Linear -> tanh -> Dropout -> Linear) regressing y = x·w + noise
// on batches drawn from the run's generator, trained with AdamW, a warm-up + cosine schedule and
// gradient clipping. Checked: the loss falls; metrics.csv/.jsonl hold the expected rows; curves.svg
// is well-formed; the checkpoint is written and loads; N steps + resume + M steps gives
// bit-identical parameters and losses to N + M straight (even after a crash past the last
// checkpoint, and with an evaluation that draws from the generator); two runs with the same seed
// give identical losses; the time budget stops the loop; Ctrl-C (SIGINT raised inside a step)
// finishes the step, saves and returns, and a second one exits at once.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "helpers.h"
#include "nn/run/checkpoint.h"
#include "nn/run/json.h"
#include "nn/layers.h"
#include "nn/run/metrics.h"
#include "nn/optim/optim.h"
#include "nn/run/plot.h"
#include "nn/optim/schedule.h"
#include "nn/run/trainer.h"

using namespace aft;
using namespace aft::test;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kB = 32, kIn = 8, kHidden = 16;

struct Regressor : nn::Module {
  Regressor(Generator* init, Generator* dropout_gen) : Module("Regressor") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(kIn, kHidden, true, init));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.1, dropout_gen));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(kHidden, 1, true, init));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(drop->forward(tanh(fc1->forward(x)))); }
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> drop;
};

// One training run's state: model, optimizer, the data/dropout generator, and the losses seen.
struct Run {
  Generator init_gen, gen;
  std::shared_ptr<Regressor> model;
  std::unique_ptr<nn::AdamW> opt;
  Tensor w_true;
  Tensor x_valid, y_valid;
  std::vector<double> losses;

  Run(uint64_t init_seed, uint64_t data_seed) : init_gen(init_seed), gen(data_seed) {
    model = std::make_shared<Regressor>(&init_gen, &gen);
    opt = std::make_unique<nn::AdamW>(nn::make_param_groups(*model, 0.01), nn::AdamWOptions{.lr = 1e-2});
    Generator wg(99), vg(7);
    w_true = mul(randn({kIn, 1}, kFloat32, &wg), 0.5);
    x_valid = randn({64, kIn}, kFloat32, &vg);
    y_valid = matmul(x_valid, w_true);
  }
  nn::StepFn step_fn() {
    return [this](int64_t) {
      Tensor x = randn({kB, kIn}, kFloat32, &gen);
      Tensor y = add(matmul(x, w_true), mul(randn({kB, 1}, kFloat32, &gen), 0.01));
      Tensor d = sub(model->forward(x), y);
      Tensor loss = mean(mul(d, d));
      loss.backward();
      losses.push_back(loss.item());
      return nn::StepResult{losses.back(), kB};
    };
  }
  // Validation on a fixed set, plus a batch drawn from the training generator (which the trainer
  // must roll back, or resumed runs would diverge).
  nn::EvalFn eval_fn() {
    return [this](int64_t) {
      CHECK_FALSE(model->is_training());
      CHECK_FALSE(autograd::grad_enabled());
      Tensor d = sub(model->forward(x_valid), y_valid);
      Tensor xr = randn({kB, kIn}, kFloat32, &gen);
      Tensor dr = sub(model->forward(xr), matmul(xr, w_true));
      return nn::Metrics{{"valid_loss", mean(mul(d, d)).item()}, {"random_mse", mean(mul(dr, dr)).item()}};
    };
  }
  std::vector<std::vector<float>> params() const {
    std::vector<std::vector<float>> out;
    for (const Tensor& p : model->parameters()) out.push_back(p.to_vector<float>());
    return out;
  }
};

nn::LRSchedule schedule(int64_t total) {
  return nn::LRSchedule{.base_lr = 1e-2, .warmup_steps = 5, .total_steps = total, .min_lr = 1e-3};
}

nn::TrainerConfig config(const std::string& dir, int64_t max_steps) {
  return nn::TrainerConfig{.max_steps = max_steps, .log_every = 4, .eval_every = 10, .checkpoint_every = 7,
                           .clip_grad_norm = 1.0, .out_dir = dir, .unit = "samples",
                           .config_json = R"({"model": "regressor", "hidden": 16})", .quiet = true};
}

// A fresh, empty directory for one test.
std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("aft_test_trainer_{}_{}", getpid(), name);
  fs::remove_all(p);
  return p.string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count_lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

// Is text a well-formed XML-ish document: every tag closed in order, attributes quoted, no raw
// '<' or '&' in text? Returns "" when it is, else what is wrong.
std::string xml_problem(const std::string& text) {
  std::vector<std::string> open;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '&') {
      size_t semi = text.find(';', i);
      std::string ent = semi == std::string::npos ? "" : text.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
        return "bad entity at " + std::to_string(i);
      continue;
    }
    if (text[i] == '>') return "stray '>' at " + std::to_string(i);
    if (text[i] != '<') continue;
    // find the tag's end, skipping quoted attribute values
    size_t j = i + 1;
    char quote = 0;
    for (; j < text.size(); ++j) {
      if (quote) {
        if (text[j] == quote) quote = 0;
        else if (text[j] == '<') return "'<' inside an attribute at " + std::to_string(j);
      } else if (text[j] == '"' || text[j] == '\'') {
        quote = text[j];
      } else if (text[j] == '>') {
        break;
      }
    }
    if (j >= text.size()) return "unterminated tag at " + std::to_string(i);
    std::string tag = text.substr(i + 1, j - i - 1);
    i = j;
    if (tag.front() == '?') continue;  // the XML declaration
    if (tag.front() == '/') {
      std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : open.back());
      open.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;  // self-closing
    open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

}  // namespace

TEST_CASE("format_duration and format_count") {
  CHECK(nn::format_duration(0) == "0.0s");
  CHECK(nn::format_duration(4.29) == "4.2s");
  CHECK(nn::format_duration(42.7) == "42s");
  CHECK(nn::format_duration(187) == "3:07");
  CHECK(nn::format_duration(3723) == "1:02:03");
  CHECK(nn::format_duration(NAN) == "?");
  CHECK(nn::format_count(950) == "950");
  CHECK(nn::format_count(999.7) == "1k");
  CHECK(nn::format_count(12345) == "12.3k");
  CHECK(nn::format_count(4.56e6) == "4.56M");
  CHECK(nn::format_count(INFINITY) == "?");
}

TEST_CASE("nice_ticks") {
  auto close = [](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::fabs(a[i] - b[i]) > 1e-12 * std::max(1.0, std::fabs(b[i]))) return false;
    return true;
  };
  CHECK(close(nn::nice_ticks(0, 1, false), {0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  CHECK(close(nn::nice_ticks(3, 97, false), {0, 20, 40, 60, 80, 100}));
  CHECK(close(nn::nice_ticks(-0.3, 0.25, false), {-0.4, -0.2, 0, 0.2, 0.4}));
  CHECK(close(nn::nice_ticks(5, 5, false), {4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6}));  // one value: +-10%
  CHECK(close(nn::nice_ticks(0.5, 8, true), {0.1, 0.2, 0.5, 1, 2, 5, 10}));        // two decades
  CHECK(close(nn::nice_ticks(0.5, 30, true), {0.1, 1, 10, 100}));                  // three
  CHECK(close(nn::nice_ticks(1e-6, 1e6, true), {1e-6, 1e-4, 1e-2, 1, 1e2, 1e4, 1e6}));  // thinned out
  check_error([] { nn::nice_ticks(0, 1, true); }, "log axis needs positive");
  check_error([] { nn::nice_ticks(2, 1, false); }, "nice_ticks");
}

TEST_CASE("svg_figure: a well-formed standalone document with every series") {
  nn::Plot a{.title = "loss <&> \"quotes\"", .x_label = "step", .y_label = "loss", .log_y = true};
  a.series.push_back({.name = "train", .x = {0, 1, 2, 3, 4}, .y = {5, 2, NAN, 0.5, 0.4}});
  a.series.push_back({.name = "valid & test", .x = {2, 4}, .y = {1, 0.6}, .markers = true});
  nn::Plot b{.title = "accuracy", .x_label = "step", .y_label = "top-1"};
  b.series.push_back({.name = "top1", .x = {2, 4}, .y = {0.5, 0.5}});
  nn::Plot empty{.title = "nothing yet"};
  std::string svg = nn::svg_figure({a, b, empty}, {.title = "run"});
  CHECK(xml_problem(svg) == "");
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(svg.find("data-name=\"train\"") != std::string::npos);
  CHECK(svg.find("data-name=\"valid &amp; test\"") != std::string::npos);
  CHECK(svg.find("data-name=\"top1\"") != std::string::npos);
  CHECK(svg.find("loss &lt;&amp;&gt; &quot;quotes&quot;") != std::string::npos);
  CHECK(svg.find("no data") != std::string::npos);
  // The NaN splits "train" into two stretches (two M commands in its path); 2 circles for valid.
  size_t at = svg.find("data-name=\"train\"");
  std::string train_path = svg.substr(at, svg.find("</g>", at) - at);
  CHECK(std::count(train_path.begin(), train_path.end(), 'M') == 2);
  at = svg.find("data-name=\"valid &amp; test\"");
  std::string valid = svg.substr(at, svg.find("</g>\n", at) - at);
  size_t circles = 0;
  for (size_t p = valid.find("<circle"); p != std::string::npos; p = valid.find("<circle", p + 1)) ++circles;
  CHECK(circles == 2);
  // Log axis labels are powers of ten and their 2x, 5x.
  CHECK(svg.find(">0.1</text>") != std::string::npos);
  CHECK(svg.find(">5</text>") != std::string::npos);
  check_error([] { nn::svg_figure({nn::Plot{.series = {{.name = "s", .x = {1, 2}, .y = {1}}}}}); }, "2 x values and 1 y values");
}

TEST_CASE("MetricsLog: CSV and JSONL, widened header, exact read-back, resume truncation") {
  std::string dir = temp_dir("metrics");
  fs::create_directories(dir);
  nn::RunPaths p(dir);
  {
    nn::MetricsLog log(p.metrics_csv, p.metrics_jsonl);
    log.append({.step = 10, .time_s = 1.5, .kind = "train", .values = {{"lr", 1e-3}, {"loss", 0.1}}});
    log.append({.step = 20, .time_s = 3.25, .kind = "train", .values = {{"lr", 1e-3}, {"loss", 1.0 / 3}}});
    log.append({.step = 20, .time_s = 3.5, .kind = "eval", .values = {{"valid_loss", NAN}}});
    log.append({.step = 30, .time_s = 5, .kind = "train", .values = {{"lr", 5e-4}, {"loss", 0.25}}});
    CHECK(log.columns() == std::vector<std::string>{"lr", "loss", "valid_loss"});
    check_error([&] { log.append({.step = 40, .kind = "train", .values = {{"a,b", 1}}}); }, "invalid metric name 'a,b'");
    check_error([&] { log.append({.step = 40, .kind = "train", .values = {{"step", 1}}}); }, "invalid metric name");
    check_error([&] { log.append({.step = 40, .kind = "other"}); }, "train or eval");
  }
  std::string csv = read_text(p.metrics_csv);
  CHECK(csv ==
        "step,time_s,kind,lr,loss,valid_loss\n"
        "10,1.5,train,0.001,0.1,\n"
        "20,3.25,train,0.001,0.3333333333333333,\n"
        "20,3.5,eval,,,nan\n"
        "30,5,train,0.0005,0.25,\n");
  std::string jsonl = read_text(p.metrics_jsonl);
  CHECK(count_lines(jsonl) == 4);
  CHECK(jsonl.find("{\"step\": 20, \"time_s\": 3.5, \"kind\": \"eval\", \"valid_loss\": null}\n") != std::string::npos);
  std::istringstream lines(jsonl);
  for (std::string line; std::getline(lines, line);) {
    json::Value v = json::parse(line, "metrics.jsonl");  // each line is a JSON document
    CHECK(v.is_object());
    CHECK(v.find("step") != nullptr);
  }
  std::vector<nn::MetricsRow> rows = nn::read_metrics_csv(p.metrics_csv);
  REQUIRE(rows.size() == 4);
  CHECK(*rows[1].get("loss") == 1.0 / 3);  // bit-exact
  CHECK(std::isnan(*rows[2].get("valid_loss")));
  CHECK_FALSE(rows[2].get("loss").has_value());
  {
    nn::MetricsLog resumed(p.metrics_csv, p.metrics_jsonl, 20);  // a checkpoint at step 20
    CHECK(resumed.rows().size() == 3);
    resumed.append({.step = 24, .time_s = 4, .kind = "train", .values = {{"lr", 1e-3}, {"loss", 0.2}}});
  }
  rows = nn::read_metrics_csv(p.metrics_csv);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3].step == 24);
  CHECK(count_lines(read_text(p.metrics_jsonl)) == 4);
  std::ofstream(dir + "/bad.csv") << "step,time_s,kind,x\n1,2,train,abc\n";
  check_error([&] { nn::read_metrics_csv(dir + "/bad.csv"); }, "bad.csv:2: 'abc' in column x is not a number");
  fs::remove_all(dir);
}

TEST_CASE("trainer: the loss falls; metrics, curves, config and checkpoint are written") {
  std::string dir = temp_dir("basic");
  Run run(1, 2);
  nn::Trainer trainer(*run.model, *run.opt, schedule(100), run.gen, config(dir, 100));
  nn::TrainResult res = trainer.fit(run.step_fn(), run.eval_fn());
  CHECK(res.reason == nn::StopReason::Finished);
  CHECK(res.step == 100);
  CHECK(res.steps_run == 100);
  REQUIRE(run.losses.size() == 100);
  double first = (run.losses[0] + run.losses[1] + run.losses[2]) / 3, last = res.loss;
  MESSAGE("loss ", first, " -> ", last, ", valid ", res.eval.at(0).second);
  CHECK(last < 0.1 * first);
  CHECK(res.eval.at(0).first == "valid_loss");
  CHECK(res.eval.at(0).second < 0.1 * first);
  CHECK(autograd::tape_size() == 0);

  nn::RunPaths p(dir);
  std::vector<nn::MetricsRow> rows = nn::read_metrics_csv(p.metrics_csv);
  std::vector<int64_t> train_steps, eval_steps;
  for (const nn::MetricsRow& r : rows) (r.kind == "train" ? train_steps : eval_steps).push_back(r.step);
  CHECK(train_steps.size() == 25);
  for (size_t i = 0; i < train_steps.size(); ++i) CHECK(train_steps[i] == 4 * static_cast<int64_t>(i + 1));
  // every 10 steps; the final evaluation is the step-100 one, not a second
  CHECK(eval_steps == std::vector<int64_t>{10, 20, 30, 40, 50, 60, 70, 80, 90, 100});
  CHECK(read_text(p.metrics_csv).rfind("step,time_s,kind,lr,loss,grad_norm,samples_per_s,valid_loss,random_mse\n", 0) == 0);
  // The row at step 8 holds the mean loss of steps 4..7 and the learning rate of step 7.
  CHECK(*rows[1].get("loss") == doctest::Approx((run.losses[4] + run.losses[5] + run.losses[6] + run.losses[7]) / 4));
  CHECK(*rows[1].get("lr") == schedule(100).at(7));
  CHECK(*rows[1].get("samples_per_s") > 0);
  CHECK(*rows[1].get("grad_norm") > 0);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].time_s >= rows[i - 1].time_s);
  CHECK(count_lines(read_text(p.metrics_jsonl)) == rows.size());

  std::string svg = read_text(p.curves_svg);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("data-name=\"train loss\"") != std::string::npos);
  CHECK(svg.find("data-name=\"valid_loss\"") != std::string::npos);
  CHECK(svg.find("data-name=\"random_mse\"") != std::string::npos);
  CHECK(read_text(p.config) == R"({"model": "regressor", "hidden": 16})" "\n");

  // The checkpoint holds the final state: loading it into a fresh model reproduces the parameters.
  Run other(5, 6);
  nn::TrainingState st = nn::load_checkpoint(p.checkpoint, *other.model, other.opt.get());
  CHECK(st.step == 100);
  CHECK(st.rng.offset == run.gen.state().offset);
  CHECK(st.rng.seed == 2);
  CHECK(st.config == trainer.config().config_json);
  CHECK(st.extra.count("trainer.time_s") == 1);
  CHECK(other.params() == run.params());
  CHECK(other.opt->steps_taken() == 100);
  fs::remove_all(dir);
}

TEST_CASE("trainer: N steps + resume + M steps == N + M straight, bit for bit") {
  std::string dir_a = temp_dir("straight"), dir_b = temp_dir("resumed");
  Run a(1, 2);
  nn::TrainResult straight =
      nn::Trainer(*a.model, *a.opt, schedule(30), a.gen, config(dir_a, 30)).fit(a.step_fn(), a.eval_fn());

  SUBCASE("stopped at a step count, resumed into a fresh model, optimizer and generator") {
    {
      // Step 13 is neither a log, evaluation nor checkpoint step: the stop logs a row, evaluates
      // (drawing from the generator, rolled back) and saves mid-window.
      Run b(1, 2);
      nn::TrainResult r = nn::Trainer(*b.model, *b.opt, schedule(30), b.gen, config(dir_b, 13)).fit(b.step_fn(), b.eval_fn());
      CHECK(r.step == 13);
    }
    Run c(77, 78);  // different initial weights and seed: everything must come from the checkpoint
    nn::TrainerConfig cfg = config(dir_b, 30);
    cfg.resume = true;
    nn::TrainResult r = nn::Trainer(*c.model, *c.opt, schedule(30), c.gen, cfg).fit(c.step_fn(), c.eval_fn());
    CHECK(r.start_step == 13);
    CHECK(r.steps_run == 17);
    CHECK(c.params() == a.params());
    CHECK(std::vector<double>(a.losses.begin() + 13, a.losses.end()) == c.losses);
    CHECK(r.loss == straight.loss);  // the smoothed loss continues too
    // The same rows as the straight run, plus the two made when it stopped at step 13.
    std::vector<nn::MetricsRow> ra = nn::read_metrics_csv(nn::RunPaths(dir_a).metrics_csv);
    std::vector<nn::MetricsRow> rc = nn::read_metrics_csv(nn::RunPaths(dir_b).metrics_csv);
    REQUIRE(rc.size() == ra.size() + 2);
    CHECK(rc[4].step == 13);  // after 4, 8 (train), 10 (eval), 12 (train)
    CHECK(rc[4].kind == "train");
    CHECK(rc[5].step == 13);
    CHECK(rc[5].kind == "eval");
    rc.erase(rc.begin() + 4, rc.begin() + 6);
    for (size_t i = 0; i < ra.size(); ++i) {
      CHECK(ra[i].step == rc[i].step);
      CHECK(ra[i].get("loss") == rc[i].get("loss"));  // row 16 averages steps 12..15 in both
      CHECK(ra[i].get("valid_loss") == rc[i].get("valid_loss"));
    }
  }
  SUBCASE("a crash after the last checkpoint: later metrics rows are dropped and redone") {
    {
      Run b(1, 2);
      nn::StepFn inner = b.step_fn();
      nn::StepFn crashing = [&](int64_t s) {
        if (s == 17) throw std::runtime_error("simulated crash");
        return inner(s);
      };
      nn::Trainer t(*b.model, *b.opt, schedule(30), b.gen, config(dir_b, 30));
      CHECK_THROWS_WITH(t.fit(crashing, b.eval_fn()), "simulated crash");
      // rows up to step 16 were logged; the last checkpoint is at step 14
      CHECK(nn::read_metrics_csv(nn::RunPaths(dir_b).metrics_csv).back().step == 16);
    }
    Run c(77, 78);
    nn::TrainerConfig cfg = config(dir_b, 30);
    cfg.resume = true;
    nn::TrainResult r = nn::Trainer(*c.model, *c.opt, schedule(30), c.gen, cfg).fit(c.step_fn(), c.eval_fn());
    CHECK(r.start_step == 14);
    CHECK(c.params() == a.params());
    // Same rows as the straight run (steps, kinds, losses; not times), none twice.
    std::vector<nn::MetricsRow> ra = nn::read_metrics_csv(nn::RunPaths(dir_a).metrics_csv);
    std::vector<nn::MetricsRow> rc = nn::read_metrics_csv(nn::RunPaths(dir_b).metrics_csv);
    REQUIRE(ra.size() == rc.size());
    for (size_t i = 0; i < ra.size(); ++i) {
      CHECK(ra[i].step == rc[i].step);
      CHECK(ra[i].kind == rc[i].kind);
      CHECK(ra[i].get("loss") == rc[i].get("loss"));
      CHECK(ra[i].get("valid_loss") == rc[i].get("valid_loss"));
    }
  }
  SUBCASE("resuming a finished run does nothing more") {
    Run c(77, 78);
    nn::TrainerConfig cfg = config(dir_a, 30);
    cfg.resume = true;
    size_t rows_before = nn::read_metrics_csv(nn::RunPaths(dir_a).metrics_csv).size();
    nn::TrainResult r = nn::Trainer(*c.model, *c.opt, schedule(30), c.gen, cfg).fit(c.step_fn(), c.eval_fn());
    CHECK(r.steps_run == 0);
    CHECK(c.losses.empty());
    CHECK(c.params() == a.params());
    CHECK(nn::read_metrics_csv(nn::RunPaths(dir_a).metrics_csv).size() == rows_before);  // no second final eval
  }
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}

TEST_CASE("trainer: same seed and thread count, identical losses") {
  std::vector<double> losses[2];
  for (int k = 0; k < 2; ++k) {
    Run run(3, 4);
    nn::TrainerConfig cfg = config("", 25);  // no files
    nn::Trainer(*run.model, *run.opt, schedule(25), run.gen, cfg).fit(run.step_fn(), run.eval_fn());
    losses[k] = run.losses;
  }
  CHECK(losses[0].size() == 25);
  CHECK(losses[0] == losses[1]);
  Run other(3, 5);  // another data seed: other losses (the check above can fail)
  nn::Trainer(*other.model, *other.opt, schedule(25), other.gen, config("", 25)).fit(other.step_fn());
  CHECK(other.losses != losses[0]);
}

TEST_CASE("trainer: the time budget stops the loop, then evaluates and saves") {
  std::string dir = temp_dir("budget");
  Run run(1, 2);
  nn::TrainerConfig cfg = config(dir, 0);  // no step limit
  cfg.time_budget_s = 0.2;
  cfg.eval_every = 0;
  cfg.checkpoint_every = 0;
  nn::StepFn inner = run.step_fn();
  nn::StepFn slow = [&](int64_t s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return inner(s);
  };
  nn::Trainer trainer(*run.model, *run.opt, schedule(1000), run.gen, cfg);
  nn::TrainResult r = trainer.fit(slow, run.eval_fn());
  CHECK(r.reason == nn::StopReason::TimeBudget);
  CHECK(r.steps_run >= 2);
  CHECK(r.steps_run <= 11);
  CHECK(r.seconds >= 0.2);
  CHECK(r.eval.size() == 2);  // the final evaluation ran
  Run other(5, 6);
  CHECK(nn::load_checkpoint(nn::RunPaths(dir).checkpoint, *other.model, other.opt.get()).step == r.step);
  fs::remove_all(dir);
}

namespace {
volatile std::sig_atomic_t g_custom_handler_calls = 0;
extern "C" void custom_handler(int) { g_custom_handler_calls = g_custom_handler_calls + 1; }
}  // namespace

TEST_CASE("trainer: Ctrl-C finishes the step, saves a checkpoint and returns; the old handler comes back") {
  std::string dir = temp_dir("sigint");
  struct sigaction mine {}, before {}, after {};
  mine.sa_handler = custom_handler;
  sigemptyset(&mine.sa_mask);
  REQUIRE(sigaction(SIGINT, &mine, &before) == 0);

  Run run(1, 2);
  nn::StepFn inner = run.step_fn();
  nn::StepFn step = [&](int64_t s) {
    nn::StepResult r = inner(s);
    if (s == 4) std::raise(SIGINT);  // as if Ctrl-C came during step 4
    return r;
  };
  nn::TrainerConfig cfg = config(dir, 100);
  cfg.eval_every = 50;
  nn::TrainResult r = nn::Trainer(*run.model, *run.opt, schedule(100), run.gen, cfg).fit(step, run.eval_fn());
  CHECK(r.reason == nn::StopReason::Interrupted);
  CHECK(r.step == 5);  // step 4 was finished
  CHECK(run.losses.size() == 5);
  CHECK(r.eval.empty());  // no evaluation on the way out
  CHECK(g_custom_handler_calls == 0);
  Run other(5, 6);
  CHECK(nn::load_checkpoint(nn::RunPaths(dir).checkpoint, *other.model, other.opt.get()).step == 5);
  CHECK(other.params() == run.params());
  CHECK(xml_problem(read_text(nn::RunPaths(dir).curves_svg)) == "");

  // The previous handler is back.
  REQUIRE(sigaction(SIGINT, nullptr, &after) == 0);
  bool restored = after.sa_handler == custom_handler;
  CHECK(restored);
  std::raise(SIGINT);
  CHECK(g_custom_handler_calls == 1);

  // Ctrl-C during the very last step: still "interrupted", so no final evaluation.
  Run late(1, 2);
  nn::StepFn late_inner = late.step_fn();
  nn::TrainResult r2 = nn::Trainer(*late.model, *late.opt, schedule(100), late.gen, config("", 3))
                           .fit([&](int64_t s) {
                             if (s == 2) std::raise(SIGINT);
                             return late_inner(s);
                           }, late.eval_fn());
  CHECK(r2.reason == nn::StopReason::Interrupted);
  CHECK(r2.step == 3);
  CHECK(r2.eval.empty());
  sigaction(SIGINT, &before, nullptr);
  fs::remove_all(dir);
}

TEST_CASE("trainer: a second Ctrl-C exits at once with status 130") {
  Run run(1, 2);
  nn::TrainerConfig cfg = config("", 100);
  nn::Trainer trainer(*run.model, *run.opt, schedule(100), run.gen, cfg);
  std::fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child touches no tensors (no thread pool after fork): it only raises
    trainer.fit([](int64_t) {
      std::raise(SIGINT);
      std::raise(SIGINT);
      return nn::StepResult{1.0, 1};
    });
    _exit(0);  // not reached when the second SIGINT exits
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
}

TEST_CASE("trainer: progress output, plain lines and the terminal bar") {
  for (int bar = 0; bar <= 1; ++bar) {
    CAPTURE(bar);
    Run run(1, 2);
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    nn::TrainerConfig cfg = config("", 20);
    cfg.quiet = false;
    cfg.log = f;
    cfg.progress_bar = bar;
    nn::Trainer(*run.model, *run.opt, schedule(20), run.gen, cfg).fit(run.step_fn(), run.eval_fn());
    std::rewind(f);
    std::string text;
    for (int c; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
    std::fclose(f);
    CHECK(text.find("eval step 10 | valid_loss ") != std::string::npos);
    CHECK(text.find("finished at step 20: 20 steps") != std::string::npos);
    CHECK(text.find("step 20/20 | loss ") != std::string::npos);
    CHECK(text.find("samples/s | lr ") != std::string::npos);
    CHECK(text.find("| ETA ") != std::string::npos);
    if (bar) {
      CHECK(text.find("\r\033[K") != std::string::npos);
    } else {
      CHECK(text.find('\r') == std::string::npos);
      CHECK(text.find("step 4/20 | loss ") != std::string::npos);  // one line per log_every steps
      CHECK(text.find("step 5/20") == std::string::npos);
    }
  }
}

TEST_CASE("trainer: bad configurations and a diverging loss give clear errors") {
  Run run(1, 2);
  auto make = [&](nn::TrainerConfig cfg) { nn::Trainer(*run.model, *run.opt, schedule(10), run.gen, cfg); };
  check_error([&] { make(config("", 0)); }, "set max_steps or time_budget_s");
  nn::TrainerConfig c = config("", 10);
  c.log_every = 0;
  check_error([&] { make(c); }, "log_every 0");
  c = config("", 10);
  c.unit = "tokens/s";
  check_error([&] { make(c); }, "unit 'tokens/s'");
  c = config("", 10);
  c.config_json = "{not json";
  check_error([&] { make(c); }, "config_json");
  nn::Trainer t(*run.model, *run.opt, schedule(10), run.gen, config("", 10));
  check_error([&] { t.fit([](int64_t s) { return nn::StepResult{s == 3 ? NAN : 1.0, 1}; }); },
              "step 3: the loss is nan");
  check_error([&] { t.save(3); }, "without an out_dir");
  // A NaN gradient (with clipping on) stops before the update: the parameters are untouched.
  std::vector<std::vector<float>> before = run.params();
  check_error([&] {
    t.fit([&](int64_t) {
      mean(run.model->forward(ones({4, kIn}))).backward();
      run.model->fc2->bias.grad().fill_(NAN);
      return nn::StepResult{1.0, 4};
    });
  }, "step 0: the gradient norm is nan");
  CHECK(run.params() == before);
}
