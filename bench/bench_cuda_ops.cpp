// bench/bench_cuda_ops.cpp: what the memory-bound CUDA kernels achieve against the device's own
// copy bandwidth, and what matmul achieves in TFLOP/s. Measured in the same run:
//   d2d copy   dst.copy_(src) of n float32 (cudaMemcpyAsync): 8n bytes moved, the reference;
//   add        y = a + b, n float32: 12n bytes;
//   layer_norm forward + backward of x [rows, D] (weight, bias): at least 20·rows·D bytes
//              (forward reads x, writes y; backward reads g and x, writes dx);
//   cross_entropy forward + backward of logits [N, C]: at least 12·N·C bytes (forward reads the
//              logits, backward reads them again and writes their gradient);
//   AdamW step over several float32 parameters of n_p elements: 28 bytes per element (reads p,
//              g, m, v; writes p, m, v);
//   matmul     float32 [S, S] @ [S, S], 2·S³ flops, with TF32 off (the default) and on.
// GB/s = the bytes above / time, so a kernel that moves more than the minimum shows below its
// real bandwidth. Each figure is the median of several timed runs after a warm-up run; each run
// ends with cuda::synchronize(), so host timing covers the whole queue.
//
// Without a real GPU it prints why and exits 0. In the EMULATE build it runs only with --tiny
// (tiny sizes, to prove the program works; the numbers mean nothing there). Usage:
//   bench_cuda_ops [--tiny] [--reps R] [--torch] [--python PATH]
// --torch runs bench/torch_cuda_ops.py with the same sizes afterwards (PyTorch eager on the GPU).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aft.h"
#include "cuda/blas.h"
#include "nn/optim/optim.h"
#include "bench_common.h"

using namespace aft;

using aft_bench::median;

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds of one call of f (followed by a device synchronise) over `reps` timed calls.
double median_seconds(int reps, const std::function<void()>& f) {
  f();
  cuda::synchronize();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    f();
    cuda::synchronize();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(t);
}

struct Sizes {
  int64_t n = int64_t{1} << 26;          // elementwise and copy: 64M float32 (256 MiB)
  int64_t ln_rows = 32768, ln_dim = 1024;
  int64_t ce_rows = 4096, ce_classes = 32768;
  int64_t adam_params = 16, adam_numel = int64_t{1} << 22;
  int64_t mm = 4096;
  int reps = 20;
};

Sizes tiny() {
  return Sizes{.n = 4096, .ln_rows = 64, .ln_dim = 64, .ce_rows = 32, .ce_classes = 256, .adam_params = 3,
               .adam_numel = 1000, .mm = 64, .reps = 3};
}

void report(const char* what, const std::string& size, double bytes, double s, double copy_gbs) {
  const double gbs = bytes / s * 1e-9;
  std::printf("%-28s %-22s %10.3f ms %9.1f GB/s %7.1f%% of d2d copy\n", what, size.c_str(), s * 1e3, gbs,
              100.0 * gbs / copy_gbs);
}

void run(const Sizes& z) {
  const Device dev = Device::cuda();
  Generator gen(1);
  std::printf("aft bench_cuda_ops on %s (build: %s); median of %d runs\n\n", cuda::device_name(0).c_str(),
              cuda::build_mode(), z.reps);

  // The reference: a device-to-device copy of n float32.
  Tensor a = randn({z.n}, {kFloat32, dev}, &gen), b = randn({z.n}, {kFloat32, dev}, &gen);
  Tensor dst = empty({z.n}, {kFloat32, dev});
  std::optional<autograd::NoGradGuard> no_grad(std::in_place);
  const double copy_s = median_seconds(z.reps, [&] { dst.copy_(a); });
  const double copy_gbs = 8.0 * z.n / copy_s * 1e-9;
  const std::string n_str = "n=" + std::to_string(z.n);
  report("d2d copy", n_str, 8.0 * z.n, copy_s, copy_gbs);
  report("add", n_str, 12.0 * z.n, median_seconds(z.reps, [&] { Tensor y = add(a, b); }), copy_gbs);
  no_grad.reset();
  a = b = dst = Tensor();

  {  // layer_norm forward + backward
    Tensor x = randn({z.ln_rows, z.ln_dim}, {kFloat32, dev}, &gen).requires_grad_();
    Tensor w = ones({z.ln_dim}, dev).requires_grad_(), bias = zeros({z.ln_dim}, dev).requires_grad_();
    Tensor g = randn({z.ln_rows, z.ln_dim}, {kFloat32, dev}, &gen);
    const double s = median_seconds(z.reps, [&] {
      x.zero_grad(), w.zero_grad(), bias.zero_grad();
      layer_norm(x, w, bias).backward(g);
    });
    report("layer_norm fwd+bwd", std::to_string(z.ln_rows) + "x" + std::to_string(z.ln_dim),
           20.0 * z.ln_rows * z.ln_dim, s, copy_gbs);
  }
  {  // cross_entropy forward + backward
    Tensor logits = randn({z.ce_rows, z.ce_classes}, {kFloat32, dev}, &gen).requires_grad_();
    Tensor target = randint(0, z.ce_classes, {z.ce_rows}, {kInt64, dev}, &gen);
    const double s = median_seconds(z.reps, [&] {
      logits.zero_grad();
      cross_entropy(logits, target).backward();
    });
    report("cross_entropy fwd+bwd", std::to_string(z.ce_rows) + "x" + std::to_string(z.ce_classes),
           12.0 * z.ce_rows * z.ce_classes, s, copy_gbs);
  }
  {  // AdamW step
    nn::ParamGroup group{.name = "all", .weight_decay = 0.01};
    for (int64_t i = 0; i < z.adam_params; ++i) {
      Tensor p = randn({z.adam_numel}, {kFloat32, dev}, &gen).requires_grad_();
      p.set_grad(randn({z.adam_numel}, {kFloat32, dev}, &gen));
      group.params.push_back(p);
    }
    nn::AdamW opt({group}, nn::AdamWOptions{});
    const double s = median_seconds(z.reps, [&] { opt.step(); });
    report("AdamW step", std::to_string(z.adam_params) + "x" + std::to_string(z.adam_numel),
           28.0 * z.adam_params * z.adam_numel, s, copy_gbs);
  }
  {  // matmul
    autograd::NoGradGuard no_grad;
    Tensor x = randn({z.mm, z.mm}, {kFloat32, dev}, &gen), y = randn({z.mm, z.mm}, {kFloat32, dev}, &gen);
    const double flops = 2.0 * z.mm * z.mm * z.mm;
    for (bool tf32 : {false, true}) {
      cuda::set_allow_tf32(tf32);
      const double s = median_seconds(z.reps, [&] { Tensor o = matmul(x, y); });
      std::printf("%-28s %-22s %10.3f ms %9.2f TFLOP/s\n", tf32 ? "matmul f32 (TF32 allowed)" : "matmul f32",
                  (std::to_string(z.mm) + "^3").c_str(), s * 1e3, flops / s * 1e-12);
    }
    cuda::set_allow_tf32(false);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool tiny_sizes = false, torch = false;
  int reps = 0;
  std::string python = "/usr/bin/python3";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--tiny") tiny_sizes = true;
    else if (arg == "--torch") torch = true;
    else if (arg == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (arg == "--python" && i + 1 < argc) python = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--tiny] [--reps R] [--torch] [--python PATH]\n", argv[0]);
      return 2;
    }
  }
  if (!cuda::is_available()) {
    std::printf("bench_cuda_ops: no CUDA device (%s); nothing to measure\n", cuda::unavailable_reason().c_str());
    return 0;
  }
  if (cuda::is_emulated() && !tiny_sizes) {
    std::printf("bench_cuda_ops: this is the SIMT emulator, not a GPU; run with --tiny to check the program\n");
    return 0;
  }
  Sizes z = tiny_sizes ? tiny() : Sizes{};
  if (reps > 0) z.reps = reps;
  try {
    run(z);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cuda_ops: %s\n", e.what());
    return 1;
  }
  if (torch) {
    std::printf("\nPyTorch eager, same sizes (bench/torch_cuda_ops.py):\n");
    std::fflush(stdout);
    const std::string here = __FILE__;  // torch_cuda_ops.py sits beside this source file
    const std::string cmd = python + " " + here.substr(0, here.rfind('/') + 1) + "torch_cuda_ops.py" +
                            (tiny_sizes ? " --tiny" : "") + " --reps " + std::to_string(z.reps);
    return std::system(cmd.c_str()) == 0 ? 0 : 1;
  }
  return 0;
}
