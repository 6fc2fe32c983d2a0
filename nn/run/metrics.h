// nn/run/metrics.h: the run directory of a training program and the metrics log written into it.
//
// Run directory layout (TrainerConfig::out_dir; every file is optional to a reader):
//
//   <out_dir>/
//     config.json              the run's configuration as the program gave it (JSON text)
//     metrics.csv              one row per logged training step and per evaluation
//     metrics.jsonl            the same records, one JSON object per line
//     curves.svg               training loss and evaluation metrics against step (nn/run/plot.h)
//     checkpoint.safetensors   the latest checkpoint: model, optimizer, step, generator, config
//
// metrics.csv columns: step, time_s, kind ("train" or "eval"), then one column per metric name
// in order of first appearance (e.g. lr, loss, grad_norm, tokens_per_s, valid_loss, valid_bpc).
// A cell a row does not have is empty. When a new metric name appears, the file is rewritten
// with the wider header (atomically), so it always has one header that fits every row.
// metrics.jsonl: {"step": 100, "time_s": 12.5, "kind": "train", "lr": 0.001, "loss": 2.31, ...};
// values that are not finite are written as null (JSON has no NaN).
//
// "step" is the number of optimizer steps completed when the record was made; time_s is the
// training wall time so far, counted across resumed runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aft::nn {

// Named values in a fixed order, e.g. {{"valid_loss", 1.23}, {"valid_bpc", 1.77}}.
using Metrics = std::vector<std::pair<std::string, double>>;

struct RunPaths {
  std::string dir, config, metrics_csv, metrics_jsonl, curves_svg, checkpoint;
  RunPaths() = default;
  explicit RunPaths(const std::string& dir);
};

struct MetricsRow {
  int64_t step = 0;
  double time_s = 0;
  std::string kind;  // "train" or "eval"
  Metrics values;
  std::optional<double> get(const std::string& name) const;
};

// The rows of a run, kept in memory (for the plot) and appended to metrics.csv/.jsonl.
class MetricsLog {
 public:
  MetricsLog() = default;  // in memory only: no files
  // Logs into these files. keep_until < 0: a fresh log (the files are truncated). Otherwise a
  // resumed run: the rows of the existing metrics.csv up to and including step keep_until are
  // kept, later ones dropped (they were made after the checkpoint and will be made again), and
  // both files are rewritten from what is kept.
  MetricsLog(std::string csv_path, std::string jsonl_path, int64_t keep_until = -1);

  // Metric names must be non-empty, must not be step/time_s/kind, and may not hold commas,
  // quotes, backslashes or control characters (aft::Error otherwise).
  void append(MetricsRow row);
  const std::vector<MetricsRow>& rows() const { return rows_; }
  const std::vector<std::string>& columns() const { return columns_; }  // metric columns

 private:
  void rewrite() const;
  std::string csv_path_, jsonl_path_;
  std::vector<MetricsRow> rows_;
  std::vector<std::string> columns_;
};

// Reads a metrics.csv written by MetricsLog (aft::Error naming the file and line when malformed).
std::vector<MetricsRow> read_metrics_csv(const std::string& path);
std::string csv_header(const std::vector<std::string>& columns);
std::string csv_line(const MetricsRow& row, const std::vector<std::string>& columns);
std::string json_line(const MetricsRow& row);

// The figure of curves.svg: a "loss" panel (the training rows' loss, and every evaluation metric
// whose name ends in "loss"; log-scaled when all positive and spanning 10x or more) and one panel
// per other evaluation metric.
std::string training_curves_svg(const std::vector<MetricsRow>& rows, const std::string& title = "");

// Writes text to path through a temporary file in the same directory and a rename, so a reader
// never sees half a file (nn/run/atomic_file.h: aft::Error naming the path and the OS's reason on
// failure, and no temporary file left behind).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace aft::nn
