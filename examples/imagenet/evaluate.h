// examples/imagenet/evaluate.h: classification metrics (loss, top-1, top-5, per-class accuracy,
// the confusion matrix) over a loader, and the confusion matrix as CSV and as an SVG heatmap.
//
// For N images with labels y_n and logits z_n [C]:
//   loss  = mean_n (logsumexp(z_n) − z_n[y_n])            (no label smoothing)
//   top-k = fraction of n with y_n among the k largest z_n   (ties: the lower class first)
//   confusion[t][p] = number of images of true class t predicted as p (argmax)
//   per-class accuracy[t] = confusion[t][t] / Σ_p confusion[t][p]   (NaN when no image)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "loader.h"
#include "model.h"

namespace aft::imagenet {

struct ClassMetrics {
  int64_t classes = 0, count = 0, skipped = 0;
  double loss_sum = 0;
  int64_t top1_hits = 0, top5_hits = 0;
  std::vector<int64_t> confusion;  // [classes, classes], row = true class

  explicit ClassMetrics(int64_t c = 0) : classes(c), confusion(static_cast<size_t>(c * c), 0) {}
  // logits [n, classes] (any float dtype or device), labels [n] int64.
  void add(const Tensor& logits, const Tensor& labels);
  double loss() const { return count ? loss_sum / count : 0.0; }
  double top1() const { return count ? static_cast<double>(top1_hits) / count : 0.0; }
  double top5() const { return count ? static_cast<double>(top5_hits) / count : 0.0; }
  std::vector<double> per_class_accuracy() const;
};

// Runs the model (in eval mode, put back afterwards; no grad) on every batch of the loader (until it ends, or
// max_batches > 0 of them). The loader's log gets the skipped files.
ClassMetrics evaluate(ImageAFT& model, Loader& loader, Device device, int64_t max_batches = 0,
                      bool progress = false);

// The k most likely classes of one row of probabilities (descending; ties: lower class first).
std::vector<int64_t> top_k(const std::vector<double>& scores, int64_t k);

// "true\\predicted,<name 0>,...\n<name 0>,<count>,..." (names quoted when needed).
std::string confusion_csv(const ClassMetrics& m, const std::vector<std::string>& names);
// A heatmap: cell (t, p) shaded by the row-normalised count (the share of class t predicted as
// p), with counts written in the cells when there are at most 40 classes, class names on both
// axes (when at most 100), and per-class accuracy at the right.
std::string confusion_svg(const ClassMetrics& m, const std::vector<std::string>& names, const std::string& title);

}  // namespace aft::imagenet
