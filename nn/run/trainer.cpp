// nn/run/trainer.cpp: the training loop of nn/run/trainer.h: schedule, clipping, optimizer step,
// progress output, metrics rows, evaluation, checkpoints, resume, time budget and Ctrl-C.
#include "nn/run/trainer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>

#include "autograd/tape.h"
#include "core/error.h"
#include "nn/run/json.h"

namespace aft::nn {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- Ctrl-C. The handler only touches sig_atomic_t flags and calls write/_exit, which are
// async-signal-safe; the loop polls the flag between steps.
volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_quiet = 0;
std::atomic<bool> g_handler_installed{false};

extern "C" void on_sigint(int) {
  if (g_interrupted) {
    static const char msg[] = "\ninterrupted again: exiting now, without a checkpoint\n";
    if (!g_quiet) (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(130);
  }
  g_interrupted = 1;
  static const char msg[] = "\ninterrupt: finishing this step and saving a checkpoint (Ctrl-C again to quit now)\n";
  if (!g_quiet) (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

// Installs the handler for the duration of fit() and puts the previous one back. A fit() nested
// in another (unusual) leaves the outer one's handler alone.
class SigintGuard {
 public:
  SigintGuard(bool on, bool quiet) {
    if (!on || g_handler_installed.exchange(true)) return;
    g_interrupted = 0;
    g_quiet = quiet;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    installed_ = sigaction(SIGINT, &sa, &previous_) == 0;
    if (!installed_) g_handler_installed = false;
  }
  ~SigintGuard() {
    if (!installed_) return;
    sigaction(SIGINT, &previous_, nullptr);
    g_handler_installed = false;
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
  bool interrupted() const { return installed_ && g_interrupted != 0; }

 private:
  bool installed_ = false;
  struct sigaction previous_ {};
};

// ---- progress output: a self-overwriting line on a terminal, plain lines otherwise.
class Progress {
 public:
  Progress(std::FILE* out, bool bar, bool quiet) : out_(out), bar_(bar), quiet_(quiet) {}
  ~Progress() { end_bar(); }
  bool bar() const { return bar_; }
  // Redraws the bar (at most every 0.2 s unless forced).
  void draw(const std::string& text, bool force) {
    if (quiet_ || !bar_ || (!force && drawn_ && seconds_since(last_) < 0.2)) return;
    std::fprintf(out_, "\r\033[K%s", text.c_str());
    std::fflush(out_);
    drawn_ = true;
    last_ = Clock::now();
  }
  // A line of its own (the bar, if drawn, is cleared first and redrawn at the next update).
  void line(const std::string& text) {
    if (quiet_) return;
    if (drawn_) std::fprintf(out_, "\r\033[K");
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
    drawn_ = false;
  }
  void end_bar() {
    if (drawn_) std::fprintf(out_, "\n");
    drawn_ = false;
  }

 private:
  std::FILE* out_;
  bool bar_, quiet_, drawn_ = false;
  Clock::time_point last_;
};

std::string format_value(double v) {
  double a = std::fabs(v);
  return (a == 0 || (a >= 1e-3 && a < 1e5)) ? fmt::format("{:.4f}", v) : fmt::format("{:.4g}", v);
}

double parse_double(const Metadata& m, const std::string& key, double fallback) {
  auto it = m.find(key);
  if (it == m.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  AFT_CHECK(end != it->second.c_str() && *end == '\0', "trainer: checkpoint entry {} = '{}' is not a number", key,
            it->second);
  return v;
}

// The schedule as saved in checkpoints: compared as text on resume (doubles in fmt's shortest
// round-trip form, so equal text means equal values).
std::string schedule_text(const LRSchedule& s) {
  const char* decay = s.decay == LRSchedule::Decay::Cosine ? "cosine" : s.decay == LRSchedule::Decay::Linear ? "linear"
                                                                                                            : "constant";
  return fmt::format("{{\"base_lr\": {}, \"warmup_steps\": {}, \"total_steps\": {}, \"decay\": \"{}\", \"min_lr\": {}}}",
                     s.base_lr, s.warmup_steps, s.total_steps, decay, s.min_lr);
}

// Creates the run directory, with an error that names it and the reason (e.g. a path under a
// regular file: "Not a directory").
void make_run_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  AFT_CHECK(!ec, "trainer: cannot create the run directory '{}': {}", dir, ec.message());
  AFT_CHECK(std::filesystem::is_directory(dir, ec), "trainer: the run directory '{}' is not a directory", dir);
}

// A fresh run may not silently replace another: refuses a directory that holds a run unless
// `overwrite`, and then removes that run's files first.
void claim_run_dir(const RunPaths& p, bool overwrite) {
  std::error_code ec;
  const bool has_run = std::filesystem::exists(p.checkpoint, ec) || std::filesystem::exists(p.metrics_csv, ec);
  if (!has_run) return;
  AFT_CHECK(overwrite,
            "trainer: '{}' already holds a run (checkpoint.safetensors or metrics.csv); resume it (--resume), replace it "
            "(--overwrite), or choose another run directory",
            p.dir);
  for (const std::string& f : {p.checkpoint, p.metrics_csv, p.metrics_jsonl, p.curves_svg}) {
    std::filesystem::remove(f, ec);
    AFT_CHECK(!ec, "trainer: --overwrite: cannot remove '{}': {}", f, ec.message());
  }
}

void check_config(const TrainerConfig& c) {
  AFT_CHECK(c.max_steps > 0 || c.time_budget_s > 0,
            "trainer: set max_steps or time_budget_s (or both), got {} and {}", c.max_steps, c.time_budget_s);
  AFT_CHECK(c.max_steps >= 0 && c.time_budget_s >= 0 && c.log_every >= 1 && c.eval_every >= 0 &&
                c.checkpoint_every >= 0 && c.clip_grad_norm >= 0,
            "trainer: invalid config: max_steps {}, time_budget_s {}, log_every {} (>= 1), eval_every {}, "
            "checkpoint_every {}, clip_grad_norm {} (none may be negative)",
            c.max_steps, c.time_budget_s, c.log_every, c.eval_every, c.checkpoint_every, c.clip_grad_norm);
  bool unit_ok = !c.unit.empty();
  for (char ch : c.unit) unit_ok = unit_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
  AFT_CHECK(unit_ok, "trainer: unit '{}' must be a word (letters, digits, _)", c.unit);
  AFT_CHECK(c.progress_bar >= -1 && c.progress_bar <= 1, "trainer: progress_bar is -1, 0 or 1, got {}", c.progress_bar);
  json::parse(c.config_json, "trainer: config_json");  // must be valid JSON (throws otherwise)
}

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Finished: return "finished";
    case StopReason::TimeBudget: return "time budget reached";
    case StopReason::Interrupted: return "interrupted";
  }
  return "?";
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 10) return fmt::format("{:.1f}s", std::floor(s * 10) / 10);
  if (s < 60) return fmt::format("{:.0f}s", std::floor(s));
  auto t = static_cast<int64_t>(s);
  if (t < 3600) return fmt::format("{}:{:02}", t / 60, t % 60);
  return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
}

std::string format_count(double v) {
  if (!std::isfinite(v)) return "?";
  const char* suffix[] = {"", "k", "M", "G", "T"};
  int k = 0;
  while (k < 4 && std::fabs(v) >= 999.5) {  // 999.5 would print as "1e+03"
    v /= 1000;
    ++k;
  }
  return k == 0 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}{}", v, suffix[k]);
}

Trainer::Trainer(Module& model, Optimizer& optimizer, LRSchedule schedule, Generator& gen, TrainerConfig config)
    : model_(model), opt_(optimizer), schedule_(schedule), gen_(gen), cfg_(std::move(config)) {
  check_config(cfg_);
}

void Trainer::save(int64_t step) {
  AFT_CHECK(!cfg_.out_dir.empty(), "trainer: cannot save a checkpoint without an out_dir");
  // Doubles in fmt's shortest round-trip form: read back, they are the same bits.
  extra["trainer.time_s"] = fmt::format("{}", time_now_);
  extra["trainer.loss_ema"] = fmt::format("{}", stats_.ema);
  extra["trainer.loss_ema_weight"] = fmt::format("{}", stats_.ema_weight);
  extra["trainer.window_loss"] = fmt::format("{}", stats_.win_loss);
  extra["trainer.window_grad_norm"] = fmt::format("{}", stats_.win_norm);
  extra["trainer.window_steps"] = fmt::format("{}", stats_.win_steps);
  extra["trainer.schedule"] = schedule_text(schedule_);
  TrainingState st{.step = step, .rng = gen_.state(), .config = cfg_.config_json, .extra = extra};
  save_checkpoint(paths().checkpoint, model_, &opt_, st);
}

TrainResult Trainer::fit(const StepFn& step_fn, const EvalFn& eval_fn) {
  AFT_CHECK(static_cast<bool>(step_fn), "trainer: fit needs a step function");
  const Clock::time_point t0 = Clock::now();
  std::FILE* out = cfg_.log ? cfg_.log : stderr;
  Progress progress(out, cfg_.progress_bar == -1 ? isatty(fileno(out)) != 0 : cfg_.progress_bar == 1, cfg_.quiet);
  const bool files = !cfg_.out_dir.empty();
  const RunPaths paths = this->paths();
  TrainResult res;

  // ---- start or resume
  int64_t step = 0, last_saved = -1;
  time_before_ = 0;
  stats_ = LossStats{};
  if (files) make_run_dir(cfg_.out_dir);
  if (files && !cfg_.resume) claim_run_dir(paths, cfg_.overwrite);
  if (files && cfg_.resume && std::filesystem::exists(paths.checkpoint)) {
    TrainingState st = load_checkpoint(paths.checkpoint, model_, &opt_);
    // Nothing has been written yet: a refused schedule leaves the run directory as it was.
    if (auto it = st.extra.find("trainer.schedule"); it != st.extra.end() && it->second != schedule_text(schedule_)) {
      AFT_CHECK(cfg_.allow_schedule_change,
                "trainer: {} was trained with the learning-rate schedule {}; this run asks for {}. Resuming with another "
                "schedule (e.g. another --steps) makes the run neither the old one nor a fresh one: resume with the "
                "same settings, or pass --extend-steps to accept the new schedule from step {} on",
                paths.checkpoint, it->second, schedule_text(schedule_), st.step);
      progress.line(fmt::format("note: the learning-rate schedule changes at step {}: was {}, now {}", st.step,
                                it->second, schedule_text(schedule_)));
    }
    step = last_saved = st.step;
    gen_.set_state(st.rng);
    for (const auto& [k, v] : st.extra) extra[k] = v;
    time_before_ = parse_double(extra, "trainer.time_s", 0);
    stats_.ema = parse_double(extra, "trainer.loss_ema", 0);
    stats_.ema_weight = parse_double(extra, "trainer.loss_ema_weight", 0);
    stats_.win_loss = parse_double(extra, "trainer.window_loss", 0);
    stats_.win_norm = parse_double(extra, "trainer.window_grad_norm", 0);
    stats_.win_steps = static_cast<int64_t>(parse_double(extra, "trainer.window_steps", 0));
    progress.line(fmt::format("resumed from {} at step {}", paths.checkpoint, step));
    if (st.config != cfg_.config_json)
      progress.line("note: the configuration differs from the one saved in the checkpoint");
  } else if (cfg_.resume) {
    progress.line(fmt::format("no checkpoint in '{}': starting from step 0", cfg_.out_dir));
  }
  if (last_saved < 0) extra.erase("trainer.last_eval_step");  // a fresh run
  int64_t last_eval = static_cast<int64_t>(parse_double(extra, "trainer.last_eval_step", -1));
  res.start_step = step;
  time_now_ = time_before_;
  MetricsLog log = files ? MetricsLog(paths.metrics_csv, paths.metrics_jsonl, last_saved) : MetricsLog();
  if (files) write_file_atomic(paths.config, cfg_.config_json + "\n");
  auto write_plot = [&] {
    if (files) write_file_atomic(paths.curves_svg, training_curves_svg(log.rows(), cfg_.title));
  };

  // ---- statistics: the loss (stats_), items and step time of the window since the last
  // metrics row, and this call's totals (step time excludes evaluation and checkpoints).
  const double beta = 0.95;
  LossStats& st = stats_;
  double win_items = 0, win_time = 0;
  double call_items = 0, call_time = 0;
  double lr = schedule_.at(step);
  const std::string rate_name = cfg_.unit + "_per_s";
  auto smoothed = [&] { return st.ema_weight > 0 ? st.ema / st.ema_weight : NAN; };

  auto status_text = [&] {
    std::string s = cfg_.max_steps > 0 ? fmt::format("step {}/{}", step, cfg_.max_steps) : fmt::format("step {}", step);
    double elapsed = seconds_since(t0);
    double per_step = res.steps_run > 0 ? call_time / static_cast<double>(res.steps_run) : NAN;
    double eta = cfg_.max_steps > 0 ? per_step * static_cast<double>(cfg_.max_steps - step) : INFINITY;
    if (cfg_.time_budget_s > 0) eta = std::min(eta, std::max(0.0, cfg_.time_budget_s - elapsed));
    s += fmt::format(" | loss {:.4f} | {} {}/s | lr {:.2e} | {} | ETA {}", smoothed(),
                     format_count(call_time > 0 ? call_items / call_time : NAN), cfg_.unit, lr,
                     format_duration(elapsed), format_duration(eta));
    return s;
  };
  // Writes the window as one metrics row; `close` starts a new window. (The row written when a
  // run stops between log steps leaves the window open, so that the checkpoint carries it and a
  // resumed run's next row is the same as a straight run's.)
  int64_t logged_at = -1;  // the step of the last training row
  for (const MetricsRow& r : log.rows())
    if (r.kind == "train") logged_at = r.step;
  auto log_row = [&](bool close) {
    if (st.win_steps == 0 || logged_at == step) return;
    logged_at = step;
    Metrics m{{"lr", lr}, {"loss", st.win_loss / static_cast<double>(st.win_steps)}};
    if (cfg_.clip_grad_norm > 0) m.emplace_back("grad_norm", st.win_norm / static_cast<double>(st.win_steps));
    m.emplace_back(rate_name, win_time > 0 ? win_items / win_time : NAN);
    log.append(MetricsRow{.step = step, .time_s = time_now_, .kind = "train", .values = std::move(m)});
    if (!progress.bar()) progress.line(status_text());
    if (!close) return;
    st.win_loss = st.win_norm = win_items = win_time = 0;
    st.win_steps = 0;
  };
  auto evaluate = [&] {
    if (!eval_fn) return;
    Clock::time_point te = Clock::now();
    Generator::State saved = gen_.state();
    model_.eval();
    Metrics m;
    try {
      autograd::NoGradGuard no_grad;
      m = eval_fn(step);
    } catch (...) {
      model_.train();
      throw;
    }
    model_.train();
    gen_.set_state(saved);  // evaluation must not move the training stream
    last_eval = step;
    extra["trainer.last_eval_step"] = fmt::format("{}", step);
    time_now_ = time_before_ + seconds_since(t0);
    std::string text = fmt::format("eval step {}", step);
    for (const auto& [k, v] : m) text += fmt::format(" | {} {}", k, format_value(v));
    progress.line(text + fmt::format(" | {:.1f}s", seconds_since(te)));
    if (!m.empty()) log.append(MetricsRow{.step = step, .time_s = time_now_, .kind = "eval", .values = m});
    write_plot();
    res.eval = std::move(m);
  };
  auto checkpoint = [&] {
    if (!files || last_saved == step) return;
    time_now_ = time_before_ + seconds_since(t0);
    save(step);
    last_saved = step;
  };

  // ---- the loop
  SigintGuard sigint(cfg_.handle_sigint, cfg_.quiet);
  model_.train();
  model_.zero_grad();
  const std::vector<Tensor> params = model_.parameters();
  StopReason reason = StopReason::Finished;
  while (cfg_.max_steps == 0 || step < cfg_.max_steps) {
    if (sigint.interrupted()) {
      reason = StopReason::Interrupted;
      break;
    }
    if (cfg_.time_budget_s > 0 && seconds_since(t0) >= cfg_.time_budget_s) {
      reason = StopReason::TimeBudget;
      break;
    }
    Clock::time_point ts = Clock::now();
    lr = schedule_.at(step);
    opt_.set_lr(lr);
    StepResult r = step_fn(step);
    AFT_CHECK(std::isfinite(r.loss), "trainer: step {}: the loss is {}; stopping (the last checkpoint, if any, is kept)",
              step, r.loss);
    double norm = cfg_.clip_grad_norm > 0 ? clip_grad_norm(params, cfg_.clip_grad_norm) : 0.0;
    AFT_CHECK(std::isfinite(norm), "trainer: step {}: the gradient norm is {}; stopping before the update", step, norm);
    opt_.step();
    opt_.zero_grad();
    ++step;
    ++res.steps_run;
    double dt = seconds_since(ts);
    time_now_ = time_before_ + seconds_since(t0);
    st.ema = beta * st.ema + (1 - beta) * r.loss;
    st.ema_weight = beta * st.ema_weight + (1 - beta);
    st.win_loss += r.loss;
    st.win_norm += norm;
    st.win_steps += 1;
    win_items += static_cast<double>(r.items);
    win_time += dt;
    call_items += static_cast<double>(r.items);
    call_time += dt;

    if (step % cfg_.log_every == 0) log_row(true);
    progress.draw(status_text(), step == cfg_.max_steps);
    if (cfg_.eval_every > 0 && step % cfg_.eval_every == 0 && !sigint.interrupted()) evaluate();
    if (cfg_.checkpoint_every > 0 && step % cfg_.checkpoint_every == 0) checkpoint();
  }

  // ---- the end: last row, final evaluation (not after Ctrl-C), checkpoint, curves.
  if (sigint.interrupted()) reason = StopReason::Interrupted;  // (during the last step)
  log_row(false);
  if (reason != StopReason::Interrupted && last_eval != step) evaluate();
  checkpoint();
  write_plot();
  progress.end_bar();
  res.reason = reason;
  res.step = step;
  res.seconds = seconds_since(t0);
  res.loss = smoothed();
  progress.line(fmt::format("{} at step {}: {} steps in {}, {} {}/s, loss {:.4f}", stop_reason_name(reason), step,
                            res.steps_run, format_duration(res.seconds),
                            format_count(call_time > 0 ? call_items / call_time : NAN), cfg_.unit, res.loss));
  return res;
}

}  // namespace aft::nn
