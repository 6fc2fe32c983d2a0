// nn/run/metrics.cpp: the metrics log (CSV and JSONL files of a run directory) and the training
// curves drawn from it. Formats are described in nn/run/metrics.h.
//
// Numbers are written with fmt's shortest round-trip form ("0.1", "1e-05"), so reading a CSV
// back gives the very doubles that were logged.
#include "nn/run/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "nn/run/atomic_file.h"
#include "nn/run/json.h"
#include "nn/run/plot.h"

namespace aft::nn {

namespace {

constexpr const char* kFixedColumns[] = {"step", "time_s", "kind"};

void check_metric_name(const std::string& name) {
  bool ok = !name.empty();
  for (char c : name) ok = ok && static_cast<unsigned char>(c) >= 0x20 && c != ',' && c != '"' && c != '\\';
  for (const char* f : kFixedColumns) ok = ok && name != f;
  AFT_CHECK(ok, "metrics: invalid metric name '{}' (non-empty; no commas, quotes, backslashes or control "
            "characters; not step/time_s/kind)", name);
}

std::string number(double v) { return fmt::format("{}", v); }  // shortest round-trip; "nan", "inf"

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells(1);
  for (char c : line) {
    if (c == ',') cells.emplace_back();
    else cells.back() += c;
  }
  return cells;
}

void append_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  AFT_CHECK(f != nullptr, "metrics: cannot open '{}' for appending: {}", path, std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  AFT_CHECK(ok, "metrics: writing '{}' failed: {}", path, std::strerror(err));
}

}  // namespace

RunPaths::RunPaths(const std::string& d)
    : dir(d),
      config(d + "/config.json"),
      metrics_csv(d + "/metrics.csv"),
      metrics_jsonl(d + "/metrics.jsonl"),
      curves_svg(d + "/curves.svg"),
      checkpoint(d + "/checkpoint.safetensors") {}

std::optional<double> MetricsRow::get(const std::string& name) const {
  for (const auto& [k, v] : values)
    if (k == name) return v;
  return std::nullopt;
}

std::string csv_header(const std::vector<std::string>& columns) {
  std::string s = "step,time_s,kind";
  for (const std::string& c : columns) s += "," + c;
  return s + "\n";
}

std::string csv_line(const MetricsRow& row, const std::vector<std::string>& columns) {
  std::string s = fmt::format("{},{},{}", row.step, number(row.time_s), row.kind);
  for (const std::string& c : columns) {
    s += ',';
    if (std::optional<double> v = row.get(c)) s += number(*v);
  }
  return s + "\n";
}

std::string json_line(const MetricsRow& row) {
  auto value = [](double v) { return std::isfinite(v) ? number(v) : std::string("null"); };
  std::string s = fmt::format("{{\"step\": {}, \"time_s\": {}, \"kind\": {}", row.step, value(row.time_s),
                              json::quote(row.kind));
  for (const auto& [k, v] : row.values) s += fmt::format(", {}: {}", json::quote(k), value(v));
  return s + "}\n";
}

std::vector<MetricsRow> read_metrics_csv(const std::string& path) {
  std::ifstream in(path);
  AFT_CHECK(in.good(), "metrics: cannot open '{}'", path);
  std::string line;
  AFT_CHECK(static_cast<bool>(std::getline(in, line)), "metrics: '{}' is empty (no header)", path);
  std::vector<std::string> header = split_csv(line);
  AFT_CHECK(header.size() >= 3 && header[0] == "step" && header[1] == "time_s" && header[2] == "kind",
            "metrics: '{}' does not start with the header step,time_s,kind: '{}'", path, line);
  std::vector<MetricsRow> rows;
  for (int line_no = 2; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    std::vector<std::string> cells = split_csv(line);
    AFT_CHECK(cells.size() == header.size(), "metrics: {}:{}: {} cells, the header has {}", path, line_no,
              cells.size(), header.size());
    auto parse = [&](const std::string& cell, const std::string& column) {
      char* end = nullptr;
      double v = std::strtod(cell.c_str(), &end);
      AFT_CHECK(!cell.empty() && end == cell.c_str() + cell.size(), "metrics: {}:{}: '{}' in column {} is not a number",
                path, line_no, cell, column);
      return v;
    };
    MetricsRow r;
    double step = parse(cells[0], "step");
    AFT_CHECK(step >= 0 && step == std::floor(step), "metrics: {}:{}: step '{}' is not a count", path, line_no, cells[0]);
    r.step = static_cast<int64_t>(step);
    r.time_s = parse(cells[1], "time_s");
    r.kind = cells[2];
    for (size_t i = 3; i < cells.size(); ++i)
      if (!cells[i].empty()) r.values.emplace_back(header[i], parse(cells[i], header[i]));
    rows.push_back(std::move(r));
  }
  return rows;
}

MetricsLog::MetricsLog(std::string csv_path, std::string jsonl_path, int64_t keep_until)
    : csv_path_(std::move(csv_path)), jsonl_path_(std::move(jsonl_path)) {
  if (keep_until >= 0 && std::filesystem::exists(csv_path_)) {
    for (MetricsRow& r : read_metrics_csv(csv_path_)) {
      if (r.step > keep_until) continue;
      for (const auto& [k, v] : r.values)
        if (std::find(columns_.begin(), columns_.end(), k) == columns_.end()) columns_.push_back(k);
      rows_.push_back(std::move(r));
    }
  }
  rewrite();
}

void MetricsLog::append(MetricsRow row) {
  AFT_CHECK(row.kind == "train" || row.kind == "eval", "metrics: row kind must be train or eval, got '{}'", row.kind);
  bool widened = false;
  for (const auto& [k, v] : row.values) {
    check_metric_name(k);
    if (std::find(columns_.begin(), columns_.end(), k) == columns_.end()) {
      columns_.push_back(k);
      widened = true;
    }
  }
  rows_.push_back(std::move(row));
  if (csv_path_.empty()) return;
  if (widened) {
    write_file_atomic(csv_path_, [&] {
      std::string text = csv_header(columns_);
      for (const MetricsRow& r : rows_) text += csv_line(r, columns_);
      return text;
    }());
  } else {
    append_text(csv_path_, csv_line(rows_.back(), columns_));
  }
  append_text(jsonl_path_, json_line(rows_.back()));
}

void MetricsLog::rewrite() const {
  if (csv_path_.empty()) return;
  std::string csv = csv_header(columns_), jsonl;
  for (const MetricsRow& r : rows_) {
    csv += csv_line(r, columns_);
    jsonl += json_line(r);
  }
  write_file_atomic(csv_path_, csv);
  write_file_atomic(jsonl_path_, jsonl);
}

std::string training_curves_svg(const std::vector<MetricsRow>& rows, const std::string& title) {
  auto ends_with_loss = [](const std::string& s) { return s.size() >= 4 && s.compare(s.size() - 4, 4, "loss") == 0; };
  Plot loss{.title = "loss", .x_label = "step", .y_label = "loss"};
  Series train{.name = "train loss"};
  std::vector<Plot> others;
  for (const MetricsRow& r : rows) {
    if (r.kind == "train") {
      if (std::optional<double> v = r.get("loss")) {
        train.x.push_back(static_cast<double>(r.step));
        train.y.push_back(*v);
      }
      continue;
    }
    for (const auto& [name, v] : r.values) {
      Plot* panel = &loss;
      if (!ends_with_loss(name)) {
        auto it = std::find_if(others.begin(), others.end(), [&](const Plot& p) { return p.title == name; });
        if (it == others.end()) {
          others.push_back(Plot{.title = name, .x_label = "step", .y_label = name});
          it = others.end() - 1;
        }
        panel = &*it;
      }
      auto s = std::find_if(panel->series.begin(), panel->series.end(), [&](const Series& x) { return x.name == name; });
      if (s == panel->series.end()) {
        panel->series.push_back(Series{.name = name, .markers = true});
        s = panel->series.end() - 1;
      }
      s->x.push_back(static_cast<double>(r.step));
      s->y.push_back(v);
    }
  }
  loss.series.insert(loss.series.begin(), std::move(train));
  // Log scale when every loss is positive and they span a factor of 10 or more.
  double lo = INFINITY, hi = 0;
  bool positive = true;
  for (const Series& s : loss.series)
    for (double v : s.y)
      if (std::isfinite(v)) {
        positive = positive && v > 0;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  loss.log_y = positive && hi >= 10 * lo;
  std::vector<Plot> panels{std::move(loss)};
  for (Plot& p : others) panels.push_back(std::move(p));
  return svg_figure(panels, FigureOptions{.title = title});
}

void write_file_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace aft::nn
