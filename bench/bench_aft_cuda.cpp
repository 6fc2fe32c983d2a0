// bench/bench_aft_cuda.cpp: time, peak GPU memory and roofline fraction of forward + backward of
// the AFT CUDA kernels (cuda/aft_full.cu, aft_local.cu, aft_simple.cu, aft_conv.cu) through the
// public ops (aft_full, aft_local, aft_simple, aft_conv, autograd for the backward). Its peer is
// bench/aft_torch.py: the same sizes and timing method in PyTorch (eager and torch.compile).
//
// Sizes (float32, inputs N(0, 1)): B = 8, D = 512, T in {256, 1024, 4096}:
//   aft_full    causal and not            w [T, T]
//   aft_local   window 32 and 256         w [T, 2·window - 1]
//   aft_simple  causal and not
//   aft_conv    8 images of 14×14 and 56×56, C = 512, 8 heads (k [B, H, W, 8]), s in {3, 7}
//
// Method: for each case one warm-up run, then --reps runs of (forward, backward with an upstream
// gradient of ones) on fresh gradients, each between cuda::synchronize() and a steady clock;
// the median is printed. Peak memory: the caching allocator's high-water mark of bytes in use
// (cuda::memory_stats, core/caching_allocator.h) during the runs, above what was in use before
// (the inputs and the upstream gradient): saved tensors, work buffers, outputs, gradients.
//
// Roofline. FLOPs and bytes are counted per variant below (count_*), from the kernels' work:
// an FMA is 2 flops, any other add/mul/compare 1, and each exp/log is counted once in a separate
// column (a full-precision expf is about 8 SM instructions, so for the exp-heavy variants the
// fraction understates how busy the SM is). Bytes are the compulsory DRAM traffic: every input
// read once and every output written once per kernel that needs it (re-reads of k, v tiles that
// the L2 serves are not counted), so the memory bound is a lower bound. The roofline time is
// max(flops / peak FLOP/s, bytes / peak bandwidth) and the fraction is that time / measured
// time. Assumed peaks (H100 SXM5, dense, no tensor cores: these kernels use the FMA pipe):
// 67 TFLOP/s FP32 and 3.35 TB/s HBM3 (H100 PCIe: 51 TFLOP/s, 2.0 TB/s; pass --peak-tflops,
// --peak-gbs). The fraction is also printed against the device-to-device copy bandwidth
// measured in the same run (read + write bytes / time of cuda::copy_d2d of 1 GiB).
//
//   bench_aft_cuda [--reps 5] [--peak-tflops 67] [--peak-gbs 3350] [--tiny]
// Without a CUDA GPU (or in the SIMT emulator) it says so and exits 0; --tiny runs tiny sizes,
// which also work in the EMULATE build, to show the program works (its timings mean nothing).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "aft.h"
#include "bench_common.h"

using namespace aft;

using aft_bench::median;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// What one forward + backward does, by the counts below.
struct Work {
  double flops = 0, exps = 0, bytes = 0;
};

struct Sizes {
  int64_t B, D;
  std::vector<int64_t> Ts, windows;
  int64_t C, heads;
  std::vector<int64_t> images, kernel_sizes;
};

// ---------------------------------------------------------------- the counts (float32: 4 bytes)
//
// Sequence variants, N = B·T·D elements per [B, T, D] tensor. Per term e^{k + w} of a pair
// (t, t') and channel:
//   forward   2 FMA (numerator, denominator of the tile product)          4 flops
//   dk, dv    G·P·E (2 mul), dv += (1), v - r (1), dk += x·(v - r) (FMA)   6 flops
//   dw        G·P (1), v - r (1), acc += (FMA)                             4 flops
// plus per element: the gate and division forward (about 10 flops, 2 exps with the log), the gate
// backward (about 8 flops, 1 exp). Bytes: forward reads q, k, v, w and writes y, L, r; backward
// reads q, g, r (gate), then k, v, L, r, gr twice (dk/dv and dw kernels), w, and writes gr, dq,
// dk, dv, dw.
Work count_pairs(double B, double T, double D, double pairs, double wcells, bool with_dw) {
  const double N = B * T * D;
  Work w;
  w.flops = pairs * B * D * (4 + 6 + (with_dw ? 4 : 0)) + N * (10 + 8);
  w.exps = N * 3;
  w.bytes = 4 * (N * (3 + 3) + wcells                         // forward
                 + N * (3 + 2) + N * 5 * (with_dw ? 2 : 1)    // backward reads
                 + wcells + N * 4 + (with_dw ? wcells : 0));  // w again, gr dq dk dv, dw
  return w;
}

// aft_full: T² pairs (causal T(T+1)/2), w [T, T].
Work count_full(double B, double T, double D, bool causal) {
  return count_pairs(B, T, D, causal ? T * (T + 1) / 2 : T * T, T * T, true);
}

// aft_local: the band's pairs, rows near the ends see fewer keys: Σ_t #{t' : |t - t'| < W}.
// The kernel sums whole 64-key tiles around the band (zero bias terms outside it are exact
// terms of the far sums, computed by chunk scans: about 3 exps and 10 flops per element, counted
// in the per-element part), so it executes more than this useful count. w [T, 2W - 1].
Work count_local(double B, double T, double D, double W) {
  double pairs = 0;
  for (double t = 0; t < T; ++t) pairs += std::min(T - 1, t + W - 1) - std::max(0.0, t - W + 1) + 1;
  Work w = count_pairs(B, T, D, pairs, T * (2 * W - 1), true);
  w.flops += B * T * D * 2 * 10;  // the far sums, forward and backward
  w.exps += B * T * D * 2 * 3;
  return w;
}

// aft_simple: O(N). Forward per element: one push into a running sum (1 exp, about 5 flops)
// and the epilogue (about 10 flops, 2 exps); causal: the chunk summary and scan read k, v once
// more. Backward: gate (8 flops, 1 exp) and one push per element of the target sums (5 flops,
// 1 exp) and far_grad (1 exp, 4 flops). Bytes: forward q, k, v -> y, L, r; backward q, g, k, v,
// L, r -> dq, dk, dv (+ k, v again for the chunk sums).
Work count_simple(double B, double T, double D, bool causal) {
  const double N = B * T * D;
  Work w;
  w.flops = N * (5 + 10 + 8 + 5 + 4);
  w.exps = N * (1 + 2 + 1 + 1 + 1);
  w.bytes = 4 * N * (6 + 9 + (causal ? 4 : 0));
  return w;
}

// aft_conv: P = B·H·W pixels, C channels, s² window terms per (pixel, channel).
//   forward   window: max pass (add, compare), then add, sub, exp, FMA, add   7 flops, 1 exp
//             far sums: about 4(2r + 1) + 5 pushes / merges                  5 flops, 1 exp each
//   backward  window: add, sub, exp, mul, add, sub, FMA                       7 flops, 1 exp
//             dw: gr·a·(v - r) per (pixel, channel, offset)                  4 flops, 1 exp
//             far sums as in the forward; dk per head: 1 add per (pixel, channel).
// Bytes: forward q, k, v -> y, L, r; backward g, q, r -> gr, dq; k, v, L, r, gr -> dk, dv, dw.
Work count_conv(double B, double H, double Wd, double C, double heads, double s) {
  const double P = B * H * Wd, r = (s - 1) / 2, far = 4 * (2 * r + 1) + 5;
  const double N = P * C, Nk = P * heads;
  Work w;
  w.flops = N * (s * s * (7 + 7 + 4) + 2 * far * 5 + 10 + 8 + 1);
  w.exps = N * (s * s * 3 + 2 * far + 3);
  w.bytes = 4 * (N * 2 + Nk + N * 3 + N * 3 + N * 2 + N * 4 + Nk + N * 3 + Nk);
  return w;
}

// ---------------------------------------------------------------- measurement

struct Result {
  double ms = 0, peak_mib = 0;
};

Result measure(int reps, const std::vector<Tensor>& inputs, const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  std::vector<Tensor> in;
  for (const Tensor& t : inputs) in.push_back(t.detach().requires_grad_());
  // Every AFT op returns the shape of q (the first input).
  const Tensor gy = ones(in[0].shape(), TensorOptions(kFloat32, Device::cuda()));
  std::vector<double> times;
  double peak = 0;
  for (int rep = 0; rep <= reps; ++rep) {  // rep 0: the warm-up
    for (Tensor& t : in) t.zero_grad();
    cuda::synchronize();
    const int64_t before = cuda::memory_stats().in_use;
    cuda::reset_peak_memory();
    const auto t0 = Clock::now();
    {
      Tensor y = f(in);
      y.backward(gy);
    }
    cuda::synchronize();
    const double ms = ms_since(t0);
    if (rep > 0) times.push_back(ms);
    peak = std::max(peak, static_cast<double>(cuda::memory_stats().peak_in_use - before) / (1 << 20));
  }
  return {median(times), peak};
}

// Bytes read + written per second by cuda::copy_d2d of `bytes` bytes (median of 10).
double d2d_bandwidth(size_t bytes) {
  void* a = cuda::allocate(bytes, 0);
  void* b = cuda::allocate(bytes, 0);
  std::vector<double> times;
  for (int rep = 0; rep <= 10; ++rep) {
    cuda::synchronize();
    const auto t0 = Clock::now();
    cuda::copy_d2d(b, a, bytes);
    cuda::synchronize();
    if (rep > 0) times.push_back(ms_since(t0));
  }
  cuda::deallocate(a, bytes, 0);
  cuda::deallocate(b, bytes, 0);
  return 2.0 * static_cast<double>(bytes) / (median(times) * 1e-3);
}

struct Peaks {
  double flops, bw, copy_bw;  // FLOP/s, bytes/s (assumed), bytes/s (measured copy)
};

void print_header() {
  std::printf("%-34s %10s %10s %9s %9s %9s %9s %8s %8s\n", "case", "median ms", "peak MiB", "GFLOP", "Gexp",
              "MB", "TFLOP/s", "%roof", "%roofcp");
}

void print_row(const std::string& name, const Result& r, const Work& w, const Peaks& pk) {
  const double s = r.ms * 1e-3;
  const double roof = std::max(w.flops / pk.flops, w.bytes / pk.bw);
  const double roof_cp = std::max(w.flops / pk.flops, w.bytes / pk.copy_bw);
  std::printf("%-34s %10.3f %10.1f %9.4g %9.4g %9.4g %9.4g %7.1f%% %7.1f%%\n", name.c_str(), r.ms, r.peak_mib,
              w.flops * 1e-9, w.exps * 1e-9, w.bytes * 1e-6, w.flops / s * 1e-12, 100 * roof / s, 100 * roof_cp / s);
  std::fflush(stdout);
}

Tensor randn_cuda(const Shape& shape) { return randn(shape, TensorOptions(kFloat32, Device::cuda())); }

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  bool tiny = false;
  double peak_tflops = 67, peak_gbs = 3350;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--reps") reps = std::max(1, std::atoi(next()));
    else if (a == "--peak-tflops") peak_tflops = std::atof(next());
    else if (a == "--peak-gbs") peak_gbs = std::atof(next());
    else if (a == "--tiny") tiny = true;
    else {
      std::fprintf(stderr, "usage: bench_aft_cuda [--reps N] [--peak-tflops X] [--peak-gbs X] [--tiny]\n");
      return 2;
    }
  }
  std::printf("bench_aft_cuda: AFT CUDA kernels, forward + backward, float32 (build: %s)\n", cuda::build_mode());
  if (!cuda::is_available()) {
    std::printf("no CUDA device: %s; nothing measured\n", cuda::unavailable_reason().c_str());
    return 0;
  }
  if (cuda::is_emulated() && !tiny) {
    std::printf("the device is the SIMT emulator, not a GPU: nothing measured (--tiny checks the program)\n");
    return 0;
  }
  std::printf("device: %s%s\n", cuda::device_name(0).c_str(),
              tiny ? "  [--tiny: tiny sizes, the timings mean nothing]" : "");

  const Sizes sz = tiny ? Sizes{1, 32, {64}, {8}, 16, 2, {6}, {3}}
                        : Sizes{8, 512, {256, 1024, 4096}, {32, 256}, 512, 8, {14, 56}, {3, 7}};
  const double copy_bw = d2d_bandwidth(tiny ? size_t{1} << 20 : size_t{1} << 30);
  const Peaks pk{peak_tflops * 1e12, peak_gbs * 1e9, copy_bw};
  std::printf("assumed peaks: %.1f TFLOP/s FP32, %.0f GB/s (H100 SXM5 defaults); measured device-to-device copy: "
              "%.0f GB/s (read + write)\n",
              peak_tflops, peak_gbs, copy_bw * 1e-9);
  std::printf("%%roof: roofline time at the assumed peaks / median; %%roofcp: the same with the measured copy "
              "bandwidth; reps %d (median), B = %lld\n\n",
              reps, static_cast<long long>(sz.B));
  print_header();

  const int64_t B = sz.B, D = sz.D;
  for (const int64_t T : sz.Ts) {
    const Tensor q = randn_cuda({B, T, D}), k = randn_cuda({B, T, D}), v = randn_cuda({B, T, D});
    const std::string tag = "T=" + std::to_string(T) + " D=" + std::to_string(D);
    for (const bool causal : {false, true}) {
      const Tensor w = randn_cuda({T, T});
      const Result r = measure(reps, {q, k, v, w}, [&](const std::vector<Tensor>& x) {
        return aft_full(x[0], x[1], x[2], x[3], causal);
      });
      print_row(std::string("aft_full") + (causal ? " causal " : " ") + tag, r, count_full(B, T, D, causal), pk);
    }
    for (const int64_t W : sz.windows) {
      if (W > T) continue;
      const Tensor w = randn_cuda({T, 2 * W - 1});
      const Result r = measure(reps, {q, k, v, w}, [&](const std::vector<Tensor>& x) {
        return aft_local(x[0], x[1], x[2], x[3], W, false);
      });
      print_row("aft_local W=" + std::to_string(W) + " " + tag, r, count_local(B, T, D, W), pk);
    }
    for (const bool causal : {false, true}) {
      const Result r = measure(reps, {q, k, v}, [&](const std::vector<Tensor>& x) {
        return aft_simple(x[0], x[1], x[2], causal);
      });
      print_row(std::string("aft_simple") + (causal ? " causal " : " ") + tag, r, count_simple(B, T, D, causal), pk);
    }
  }
  for (const int64_t HW : sz.images) {
    const Tensor q = randn_cuda({B, HW, HW, sz.C}), k = randn_cuda({B, HW, HW, sz.heads}),
                 v = randn_cuda({B, HW, HW, sz.C});
    for (const int64_t s : sz.kernel_sizes) {
      const Tensor w = randn_cuda({sz.heads, s, s});
      const Result r = measure(reps, {q, k, v, w}, [&](const std::vector<Tensor>& x) {
        return aft_conv(x[0], x[1], x[2], x[3], sz.heads);
      });
      const std::string name = "aft_conv " + std::to_string(HW) + "x" + std::to_string(HW) + " s=" +
                               std::to_string(s) + " C=" + std::to_string(sz.C) + " h=" + std::to_string(sz.heads);
      print_row(name, r, count_conv(B, HW, HW, sz.C, sz.heads, s), pk);
    }
  }
  return 0;
}
