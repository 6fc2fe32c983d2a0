// examples/imagenet/evaluate.cpp: metrics accumulation, the evaluation loop, and the confusion
// matrix as CSV and SVG (see evaluate.h).
#include "evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <unistd.h>

#include "autograd/tape.h"
#include "core/format.h"

namespace aft::imagenet {

std::vector<int64_t> top_k(const std::vector<double>& s, int64_t k) {
  std::vector<int64_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int64_t>(k, static_cast<int64_t>(s.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    return s[static_cast<size_t>(a)] > s[static_cast<size_t>(b)] ||
           (s[static_cast<size_t>(a)] == s[static_cast<size_t>(b)] && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

void ClassMetrics::add(const Tensor& logits, const Tensor& labels) {
  AFT_CHECK(logits.ndim() == 2 && logits.size(1) == classes && labels.ndim() == 1 && labels.size(0) == logits.size(0),
            "ClassMetrics: expected logits [n, {}] and labels [n], got {} and {}", classes, logits.shape(), labels.shape());
  const int64_t n = logits.size(0), C = classes;
  std::vector<double> z = logits.to_vector<double>();
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> row(z.begin() + i * C, z.begin() + (i + 1) * C);
    const int64_t t = y[static_cast<size_t>(i)];
    AFT_CHECK(t >= 0 && t < C, "ClassMetrics: label {} outside [0, {})", t, C);
    double m = *std::max_element(row.begin(), row.end()), se = 0;
    for (double v : row) se += std::exp(v - m);
    loss_sum += m + std::log(se) - row[static_cast<size_t>(t)];
    std::vector<int64_t> best = top_k(row, 5);
    top1_hits += best[0] == t;
    top5_hits += std::find(best.begin(), best.end(), t) != best.end();
    ++confusion[static_cast<size_t>(t * C + best[0])];
    ++count;
  }
}

std::vector<double> ClassMetrics::per_class_accuracy() const {
  std::vector<double> acc(static_cast<size_t>(classes), NAN);
  for (int64_t t = 0; t < classes; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < classes; ++p) row += confusion[static_cast<size_t>(t * classes + p)];
    if (row > 0) acc[static_cast<size_t>(t)] = static_cast<double>(confusion[static_cast<size_t>(t * classes + t)]) / row;
  }
  return acc;
}

ClassMetrics evaluate(ImageAFT& model, Loader& loader, Device device, int64_t max_batches, bool progress) {
  ClassMetrics m(model.config().classes);
  progress = progress && isatty(fileno(stderr));  // a line rewritten in place: terminals only
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0;
  while (max_batches <= 0 || done < max_batches) {
    std::optional<Batch> b = loader.next();
    if (!b) break;
    ++done;
    m.skipped += b->skipped;
    if (b->labels.size(0) == 0) continue;
    m.add(model.forward(b->images.to(device)), b->labels);
    if (progress) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "\r%lld images, top-1 %.4f, %.0f images/s   ", static_cast<long long>(m.count), m.top1(),
                   m.count / std::max(s, 1e-9));
    }
  }
  if (progress) std::fprintf(stderr, "\n");
  model.train(was_training);
  return m;
}

namespace {

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string shorten(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n - 1) + "~"; }

}  // namespace

std::string confusion_csv(const ClassMetrics& m, const std::vector<std::string>& names) {
  AFT_CHECK(static_cast<int64_t>(names.size()) == m.classes, "confusion_csv: {} names for {} classes", names.size(), m.classes);
  std::string s = "true\\predicted";
  for (const auto& n : names) {
    s += ',';
    s += csv_cell(n);
  }
  s += "\n";
  for (int64_t t = 0; t < m.classes; ++t) {
    s += csv_cell(names[static_cast<size_t>(t)]);
    for (int64_t p = 0; p < m.classes; ++p) s += fmt::format(",{}", m.confusion[static_cast<size_t>(t * m.classes + p)]);
    s += "\n";
  }
  return s;
}

std::string confusion_svg(const ClassMetrics& m, const std::vector<std::string>& names, const std::string& title) {
  AFT_CHECK(static_cast<int64_t>(names.size()) == m.classes, "confusion_svg: {} names for {} classes", names.size(), m.classes);
  const int64_t C = m.classes;
  const bool labels = C <= 100, counts = C <= 40;
  const double cell = std::clamp(640.0 / static_cast<double>(C), 4.0, 44.0);
  const double left = labels ? 150 : 40, top = labels ? 160 : 60, grid = cell * C;
  const double width = left + grid + 90, height = top + grid + 40;
  std::vector<double> acc = m.per_class_accuracy();
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{:.1f}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n"
      "<text x=\"{:.1f}\" y=\"38\" text-anchor=\"middle\">predicted class (columns) vs true class (rows); shade: share "
      "of the row; top-1 {:.4f} over {} images</text>\n",
      width, height, width / 2, xml_escape(title), width / 2, m.top1(), m.count);
  for (int64_t t = 0; t < C; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < C; ++p) row += m.confusion[static_cast<size_t>(t * C + p)];
    for (int64_t p = 0; p < C; ++p) {
      int64_t n = m.confusion[static_cast<size_t>(t * C + p)];
      double v = row ? static_cast<double>(n) / row : 0.0;
      // white (v = 0) to dark blue (v = 1)
      int r = static_cast<int>(std::lround(255 - v * (255 - 8))), g = static_cast<int>(std::lround(255 - v * (255 - 48))),
          b = static_cast<int>(std::lround(255 - v * (255 - 107)));
      double x = left + p * cell, y = top + t * cell;
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"rgb({},{},{})\" "
                       "stroke=\"#ddd\" stroke-width=\"0.5\"><title>{} as {}: {}</title></rect>\n",
                       x, y, cell, cell, r, g, b, xml_escape(names[static_cast<size_t>(t)]),
                       xml_escape(names[static_cast<size_t>(p)]), n);
      if (counts && n > 0)
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" dominant-baseline=\"central\" "
                         "font-size=\"{:.0f}\" fill=\"{}\">{}</text>\n",
                         x + cell / 2, y + cell / 2, std::min(11.0, cell / 2.6), v > 0.5 ? "white" : "black", n);
    }
    double y = top + (t + 0.5) * cell;
    if (labels) {
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" dominant-baseline=\"central\">{}</text>\n",
                       left - 6, y, xml_escape(shorten(names[static_cast<size_t>(t)], 22)));
      double a = acc[static_cast<size_t>(t)];
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" dominant-baseline=\"central\">{}</text>\n", left + grid + 8, y,
                       std::isnan(a) ? std::string("-") : fmt::format("{:.1f}%", 100 * a));
    }
  }
  if (labels) {
    for (int64_t p = 0; p < C; ++p) {
      double x = left + (p + 0.5) * cell, y = top - 6;
      s += fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-60)\">{}</text>\n", x, y,
                       xml_escape(shorten(names[static_cast<size_t>(p)], 22)));
    }
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-weight=\"bold\">accuracy</text>\n", left + grid + 8, top - 6);
  }
  s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"black\"/>\n",
                   left, top, grid, grid);
  s += "</svg>\n";
  return s;
}

}  // namespace aft::imagenet
