// examples/common/sampling.cpp: temperature and top-k sampling from logits (see sampling.h).
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/format.h"
#include "ops/ops.h"

namespace aft::sampling {

int sample_logits(std::vector<double> logits, double temperature, int64_t top_k, double u) {
  const int V = static_cast<int>(logits.size());
  AFT_CHECK(V > 0, "sample_logits: no logits");
  AFT_CHECK(temperature > 0, "sample_logits: temperature must be > 0, got {}", temperature);
  if (top_k > 0 && top_k < V) {
    // Keep the k largest: everything below the k-th largest logit gets probability 0.
    std::vector<double> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<>());
    double cut = sorted[static_cast<size_t>(top_k - 1)];
    for (double& l : logits)
      if (l < cut) l = -INFINITY;
  }
  // p_i = exp((l_i − max)/temperature): the largest is 1, so the total is >= 1.
  double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double total = 0;
  for (int i = 0; i < V; ++i) total += p[i] = std::exp((logits[i] - mx) / temperature);
  u *= total;
  for (int i = 0; i < V; ++i) {
    u -= p[i];
    if (u < 0) return i;
  }
  return V - 1;
}

int sample_logits(std::vector<double> logits, double temperature, int64_t top_k, Generator& gen) {
  return sample_logits(std::move(logits), temperature, top_k, rand({1}, kFloat64, &gen).item());
}

std::vector<int64_t> sample_rows(const Tensor& logits, double temperature, int64_t top_k, Generator& gen) {
  AFT_CHECK(logits.defined() && logits.ndim() == 2, "sample_rows: expected logits [B, V], got {}",
            logits.defined() ? logits.shape() : Shape{});
  const int64_t B = logits.size(0), V = logits.size(1);
  std::vector<double> all = logits.to_vector<double>();  // to the host
  std::vector<double> u = rand({B}, kFloat64, &gen).to_vector<double>();
  std::vector<int64_t> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    out[b] = sample_logits(std::vector<double>(all.begin() + b * V, all.begin() + (b + 1) * V), temperature, top_k,
                           u[b]);
  return out;
}

}  // namespace aft::sampling
