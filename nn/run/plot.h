// nn/run/plot.h: line plots as standalone SVG, written by hand (no dependencies), so a training
// program can draw its own curves: axes with "nice" ticks (1, 2, 5 x 10^k), grid, tick labels,
// axis labels, a title, a legend, several series per panel, optional log scales, and several
// panels stacked in one figure.
//
// Points that are not finite (and, on a log axis, not positive) are left out and break the line.
// The text is valid XML: names and titles are escaped.
#pragma once

#include <string>
#include <vector>

namespace aft::nn {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length
  bool markers = false;      // a dot at each point (for sparse series such as evaluations)
};

struct Plot {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<Series> series;
};

struct FigureOptions {
  std::string title;       // above all panels; empty: none
  int width = 760;         // pixels
  int panel_height = 320;  // pixels per panel
};

// One SVG document holding the panels one below the other.
std::string svg_figure(const std::vector<Plot>& panels, const FigureOptions& opts = {});

// Tick positions for [lo, hi]: multiples of a nice step (linear), or powers of ten, with 2 and 5
// times them when the range spans at most two decades (log). Exposed for the tests.
std::vector<double> nice_ticks(double lo, double hi, bool log_scale, int target = 6);

}  // namespace aft::nn
