// nn/run/plot.cpp: the SVG line plots of nn/run/plot.h, drawn by hand.
//
// Each panel is a <g> translated to its place in the figure. Inside, the plot area is the
// rectangle [kLeft, width - kRight] x [kTop, panel_height - kBottom]; a data point (x, y) maps to
//   px = kLeft + (t(x) - t(x_lo)) / (t(x_hi) - t(x_lo)) * plot_width     (t = log10 on a log axis)
//   py = bottom - (t(y) - t(y_lo)) / (t(y_hi) - t(y_lo)) * plot_height   (SVG's y grows downwards)
// where [lo, hi] is the axis range: the data range widened to the outer ticks.
#include "nn/run/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace aft::nn {

namespace {

constexpr double kLeft = 72, kRight = 24, kTop = 30, kBottom = 48;  // panel margins, pixels
constexpr double kFigureTitle = 28;                                  // height of the figure title
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters, even escaped.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

bool usable(double v, bool log_scale) { return std::isfinite(v) && (!log_scale || v > 0); }

// One axis: its range, ticks and the transform t (identity or log10).
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  double t(double v) const { return log ? std::log10(v) : v; }
  double frac(double v) const { return (t(v) - t(lo)) / (t(hi) - t(lo)); }
};

Axis make_axis(const std::vector<double>& values, bool log_scale) {
  Axis a;
  a.log = log_scale;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    if (!usable(v, log_scale)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!(lo <= hi)) {  // no data
    lo = log_scale ? 1 : 0;
    hi = log_scale ? 10 : 1;
  }
  a.ticks = nice_ticks(lo, hi, log_scale);
  a.lo = std::min(lo, a.ticks.front());
  a.hi = std::max(hi, a.ticks.back());
  return a;
}

std::string tick_label(double v, const Axis& a) {
  if (a.log) return fmt::format("{:g}", v);
  double step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : 1.0;
  if (std::fabs(v) < step * 1e-9) v = 0;  // -0.000 and 1e-17 from rounding
  if (std::fabs(v) >= 1e6 || step < 1e-4) return fmt::format("{:.4g}", v);
  int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return fmt::format("{:.{}f}", v, decimals);
}

// Rough width of a label in the 12px sans-serif font, for the legend box.
double text_width(const std::string& s) { return 6.8 * static_cast<double>(s.size()); }

void draw_panel(std::string& o, const Plot& p, double width, double height, int panel_index) {
  const double right = width - kRight, bottom = height - kBottom;
  const double pw = right - kLeft, ph = bottom - kTop;
  std::vector<double> xs, ys;
  for (const Series& s : p.series) {
    AFT_CHECK(s.x.size() == s.y.size(), "plot: series '{}' has {} x values and {} y values", s.name,
              s.x.size(), s.y.size());
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  Axis ax = make_axis(xs, p.log_x), ay = make_axis(ys, p.log_y);
  auto px = [&](double x) { return kLeft + ax.frac(x) * pw; };
  auto py = [&](double y) { return bottom - ay.frac(y) * ph; };

  if (!p.title.empty())
    o += fmt::format("<text x=\"{:.1f}\" y=\"19\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                     kLeft + pw / 2, xml_escape(p.title));
  // Grid, ticks and tick labels.
  o += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double t : ax.ticks) o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n", px(t), kTop, bottom);
  for (double t : ay.ticks) o += fmt::format("<line x1=\"{1:.1f}\" y1=\"{0:.1f}\" x2=\"{2:.1f}\" y2=\"{0:.1f}\"/>\n", py(t), kLeft, right);
  o += "</g>\n<g fill=\"#333\">\n";
  for (double t : ax.ticks)
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(t), bottom + 16,
                     xml_escape(tick_label(t, ax)));
  for (double t : ay.ticks)
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" dy=\"0.32em\">{}</text>\n", kLeft - 6, py(t),
                     xml_escape(tick_label(t, ay)));
  o += "</g>\n";
  // Frame and axis labels.
  o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#333\"/>\n",
                   kLeft, kTop, pw, ph);
  if (!p.x_label.empty())
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", kLeft + pw / 2,
                     height - 12, xml_escape(p.x_label));
  if (!p.y_label.empty())
    o += fmt::format("<text transform=\"translate(16,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     kTop + ph / 2, xml_escape(p.y_label));
  if (xs.empty())
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#999\">no data</text>\n",
                     kLeft + pw / 2, kTop + ph / 2);

  // Series, clipped to the plot area (and a margin, for markers on its edges). A point that
  // cannot be drawn ends the current stretch.
  o += fmt::format("<clipPath id=\"area{}\"><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/></clipPath>\n",
                   panel_index, kLeft - 4, kTop - 4, pw + 8, ph + 8);
  o += fmt::format("<g clip-path=\"url(#area{})\" fill=\"none\" stroke-width=\"1.5\" stroke-linejoin=\"round\">\n", panel_index);
  for (size_t k = 0; k < p.series.size(); ++k) {
    const Series& s = p.series[k];
    const char* color = kPalette[k % std::size(kPalette)];
    std::string d, dots;
    bool open = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], p.log_x) || !usable(s.y[i], p.log_y)) {
        open = false;
        continue;
      }
      d += fmt::format("{}{:.1f},{:.1f} ", open ? "L" : "M", px(s.x[i]), py(s.y[i]));
      open = true;
      if (s.markers) dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\"/>", px(s.x[i]), py(s.y[i]));
    }
    o += fmt::format("<g class=\"series\" data-name=\"{}\">", xml_escape(s.name));
    if (!d.empty()) o += fmt::format("<path stroke=\"{}\" d=\"{}\"/>", color, d.substr(0, d.size() - 1));
    if (!dots.empty()) o += fmt::format("<g fill=\"{}\" stroke=\"none\">{}</g>", color, dots);
    o += "</g>\n";
  }
  o += "</g>\n";

  // Legend: in the corner of the plot area that covers the fewest points (top right on a tie).
  if (!p.series.empty()) {
    double w = 0;
    for (const Series& s : p.series) w = std::max(w, text_width(s.name));
    w += 36;
    double h = 16.0 * static_cast<double>(p.series.size()) + 8, x0 = right - w - 8, y0 = kTop + 8;
    size_t fewest = SIZE_MAX;
    for (double cy : {kTop + 8, bottom - h - 8})
      for (double cx : {right - w - 8, kLeft + 8}) {
        size_t covered = 0;
        for (const Series& s : p.series)
          for (size_t i = 0; i < s.x.size(); ++i) {
            if (!usable(s.x[i], p.log_x) || !usable(s.y[i], p.log_y)) continue;
            double qx = px(s.x[i]), qy = py(s.y[i]);
            covered += qx >= cx - 4 && qx <= cx + w + 4 && qy >= cy - 4 && qy <= cy + h + 4;
          }
        if (covered < fewest) {
          fewest = covered;
          x0 = cx;
          y0 = cy;
        }
      }
    o += fmt::format("<g class=\"legend\"><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#fff\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
                     x0, y0, w, h);
    for (size_t k = 0; k < p.series.size(); ++k) {
      double y = y0 + 12 + 16.0 * static_cast<double>(k);
      o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>", x0 + 6,
                       y, x0 + 24, y, kPalette[k % std::size(kPalette)]);
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" dy=\"0.32em\">{}</text>\n", x0 + 30, y, xml_escape(p.series[k].name));
    }
    o += "</g>\n";
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, bool log_scale, int target) {
  AFT_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && target >= 2,
            "nice_ticks: need finite lo <= hi and target >= 2, got [{}, {}], {}", lo, hi, target);
  std::vector<double> ticks;
  if (log_scale) {
    AFT_CHECK(lo > 0, "nice_ticks: a log axis needs positive values, got [{}, {}]", lo, hi);
    int a = static_cast<int>(std::floor(std::log10(lo) + 1e-12));
    int b = static_cast<int>(std::ceil(std::log10(hi) - 1e-12));
    if (b <= a) b = a + 1;
    int every = std::max(1, (b - a + target - 1) / target);  // thin out powers over many decades
    for (int k = a; k <= b; k += every) {
      double p = std::pow(10.0, k);
      ticks.push_back(p);
      if (b - a <= 2 && k < b) {
        ticks.push_back(2 * p);
        ticks.push_back(5 * p);
      }
    }
    if (ticks.back() < hi) ticks.push_back(std::pow(10.0, b));
    return ticks;
  }
  if (lo == hi) {  // one value: a unit-sized (or 10%) window around it
    double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  // step = {1, 2, 5} x 10^k closest above (hi - lo) / (target - 1)
  double raw = (hi - lo) / (target - 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  double first = std::floor(lo / step), last = std::ceil(hi / step);
  for (double i = first; i <= last; i += 1) ticks.push_back(i * step);
  return ticks;
}

std::string svg_figure(const std::vector<Plot>& panels, const FigureOptions& opts) {
  AFT_CHECK(opts.width >= 200 && opts.panel_height >= 120, "svg_figure: figure too small ({} x {} per panel)",
            opts.width, opts.panel_height);
  const double top = opts.title.empty() ? 0 : kFigureTitle;
  const double height = top + opts.panel_height * static_cast<double>(std::max<size_t>(panels.size(), 1));
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
                   "font-family=\"sans-serif\" font-size=\"12\">\n",
                   opts.width, height);
  o += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  if (!opts.title.empty())
    o += fmt::format("<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
                     opts.width / 2, xml_escape(opts.title));
  for (size_t i = 0; i < panels.size(); ++i) {
    o += fmt::format("<g class=\"panel\" transform=\"translate(0,{})\">\n", top + opts.panel_height * static_cast<double>(i));
    draw_panel(o, panels[i], opts.width, opts.panel_height, static_cast<int>(i));
    o += "</g>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace aft::nn
