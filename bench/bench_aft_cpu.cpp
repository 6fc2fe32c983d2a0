// bench/bench_aft_cpu.cpp: time and peak host memory of forward + backward of the AFT CPU
// operators (ops/aft_*.cpp) for growing T, next to the same computation written with plain
// tensor ops that materialise the T×T weights (the "dense" baseline, as in the public PyTorch
// implementations):
//   E = exp(w - rowmax(w)) [T, T] (masked to t' <= t when causal), P = exp(k - max_t k)
//   y = sigmoid(q) · (E @ (P·v)) / (E @ P)           (matmul, autograd for the backward)
// The dense baseline is the same for aft_full, aft_local (band written into a T×T matrix) and
// aft_simple (w = 0): it is what one pays without a dedicated kernel.
//
// Inputs: q, k, v [B, T, D] float32 N(0, 1); w [T, T] or the band [T, 2·window - 1] N(0, 1).
// Each measurement runs once to warm up, then --reps times; the median is printed. Peak memory
// is the high-water mark of CPU tensor memory (aft::cpu_memory_stats) during one forward +
// backward above what was allocated before it (the inputs), so it counts saved tensors,
// temporaries and the gradients.
//
//   bench_aft_cpu [--b 4] [--d 256] [--window 64] [--min-t 256] [--max-t 8192]
//                 [--full-max-t 4096] [--dense-max-t 4096] [--reps 3] [--causal]
// T doubles from --min-t to --max-t; aft_full stops at --full-max-t and the dense baseline at
// --dense-max-t (both quadratic: T = 8192 takes minutes on 2 cores; pass 8192 to include it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "aft.h"
#include "bench_common.h"

using namespace aft;

using aft_bench::cpu_model;
using aft_bench::median;

namespace {

struct Result {
  double ms = 0, peak_mb = 0;
};

// Forward + backward of f on fresh leaves, timed; peak memory of one run.
Result measure(int reps, const std::vector<Tensor>& inputs,
               const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  std::vector<Tensor> in;
  for (const Tensor& t : inputs) in.push_back(t.detach().requires_grad_());
  Tensor gy;
  std::vector<double> times;
  double peak = 0;
  for (int r = 0; r <= reps; ++r) {
    for (Tensor& t : in) t.zero_grad();
    const int64_t before = cpu_memory_stats().in_use;
    reset_cpu_peak_memory();
    auto t0 = std::chrono::steady_clock::now();
    Tensor y = f(in);
    if (!gy.defined()) gy = ones(y.shape(), y.dtype());  // allocated before the first timed run
    y.backward(gy);
    auto t1 = std::chrono::steady_clock::now();
    if (r > 0) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    peak = std::max(peak, static_cast<double>(cpu_memory_stats().peak - before) / (1 << 20));
  }
  return {median(times), peak};
}

// The dense baseline (module comment). w is [T, T].
Tensor dense_aft(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w, bool causal) {
  const int64_t T = w.size(0);
  Tensor wm = w;
  if (causal) {
    Tensor i = arange(T, kInt64);
    Tensor keep = le(i.unsqueeze(0), i.unsqueeze(1));  // [t, t'] : t' <= t
    wm = where(keep, w, full({T, T}, -1e30, w.dtype()));
  }
  Tensor E = exp(wm - amax(wm.detach(), {1}, true));
  Tensor P = exp(k - amax(k.detach(), {1}, true));
  return sigmoid(q) * matmul(E, P * v) / matmul(E, P);
}

int64_t arg(int argc, char** argv, const char* name, int64_t def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  return def;
}
bool flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t B = arg(argc, argv, "--b", 4), D = arg(argc, argv, "--d", 256);
  const int64_t window = arg(argc, argv, "--window", 64), reps = arg(argc, argv, "--reps", 3);
  const int64_t min_t = arg(argc, argv, "--min-t", 256), max_t = arg(argc, argv, "--max-t", 8192);
  const int64_t full_max_t = arg(argc, argv, "--full-max-t", 4096);
  const int64_t dense_max_t = arg(argc, argv, "--dense-max-t", 4096);
  const bool causal = flag(argc, argv, "--causal");

  std::printf("bench_aft_cpu: AFT operators, forward + backward, float32\n");
  std::printf("CPU: %s, %d threads (AFT_NUM_THREADS)\n", cpu_model().c_str(), num_threads());
  std::printf(
      "B = %lld, D = %lld, aft_local window = %lld, %s, median of %lld runs after a warm-up\n",
      static_cast<long long>(B), static_cast<long long>(D), static_cast<long long>(window),
      causal ? "causal" : "non-causal", static_cast<long long>(reps));
  std::printf("peak = CPU tensor memory above the inputs during one forward + backward\n\n");
  std::printf("%6s  %-11s %11s %10s   %s\n", "T", "op", "time (ms)", "peak (MB)", "time/T (us)");

  Generator gen(1);
  for (int64_t T = min_t; T <= max_t; T *= 2) {
    Tensor q = randn({B, T, D}, kFloat32, &gen), k = randn({B, T, D}, kFloat32, &gen);
    Tensor v = randn({B, T, D}, kFloat32, &gen);
    auto row = [&](const char* op, const Result& r) {
      std::printf("%6lld  %-11s %11.1f %10.1f   %.2f\n", static_cast<long long>(T), op, r.ms,
                  r.peak_mb, 1000.0 * r.ms / static_cast<double>(T));
      std::fflush(stdout);
    };
    row("aft_simple", measure(static_cast<int>(reps), {q, k, v}, [&](const std::vector<Tensor>& x) {
          return aft_simple(x[0], x[1], x[2], causal);
        }));
    Tensor wb = randn({T, causal ? window : 2 * window - 1}, kFloat32, &gen);
    row("aft_local",
        measure(static_cast<int>(reps), {q, k, v, wb}, [&](const std::vector<Tensor>& x) {
          return aft_local(x[0], x[1], x[2], x[3], window, causal);
        }));
    if (T > full_max_t && T > dense_max_t) continue;
    Tensor w = randn({T, T}, kFloat32, &gen);
    if (T <= full_max_t)
      row("aft_full",
          measure(static_cast<int>(reps), {q, k, v, w}, [&](const std::vector<Tensor>& x) {
            return aft_full(x[0], x[1], x[2], x[3], causal);
          }));
    if (T <= dense_max_t)
      row("dense T×T",
          measure(static_cast<int>(reps), {q, k, v, w}, [&](const std::vector<Tensor>& x) {
            return dense_aft(x[0], x[1], x[2], x[3], causal);
          }));
  }
  return 0;
}
