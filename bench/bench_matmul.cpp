// bench/bench_matmul.cpp: GFLOP/s of aft's CPU gemm (core/gemm/gemm.h) against OpenBLAS's
// cblas_sgemm / cblas_dgemm on the same thread count, for square sizes and for the shapes of a
// transformer layer's projections (forward x @ W, and the backward's G @ W^T and X^T @ G).
//
// Each shape is timed in three rounds of (a block of aft runs, a block of OpenBLAS runs), each
// block after an untimed warm-up call, --reps runs per library in all; the median and the best
// are reported (FLOPs = 2·M·N·K). Blocks with pauses between them, rather than alternating
// calls, because a library's worker threads keep spinning for a while after a call and would
// steal a core from the other one; rounds, so that both libraries see the same stretches of a
// noisy machine. Both results are compared (max |aft − blas| / max |blas|).
//
// OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment; to measure its best
// kernels run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./bench_matmul
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "aft.h"
#include "core/gemm/gemm.h"
#include "bench_common.h"

#if AFT_HAVE_OPENBLAS
#include <cblas.h>
#endif

using aft_bench::cpu_model;
using aft_bench::median;

namespace {

struct Shape3 {
  const char* what;
  bool ta, tb;
  int64_t M, N, K;
  bool f64;
};

// Seconds of each of `n` timed calls of f, after one untimed warm-up call (first touch of C,
// packing buffers, thread start-up).
template <class F>
void time_block(int n, std::vector<double>* out, F&& f) {
  f();
  for (int r = 0; r < n; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    out->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

void pause() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

template <class T>
void run_shape(const Shape3& s, int reps) {
  const int64_t M = s.M, N = s.N, K = s.K;
  // Stored shapes: A [M, K] or [K, M] (ta), B [K, N] or [N, K] (tb); dense leading dims.
  const int64_t lda = s.ta ? M : K, ldb = s.tb ? K : N;
  std::vector<T> A(M * K), B(K * N), C(M * N, T(0)), Cref(M * N, T(0));
  uint64_t x = 88172645463325252ull;
  auto rnd = [&x] {  // xorshift, uniform in [-1, 1)
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return static_cast<T>(static_cast<double>(x >> 11) / 4503599627370496.0 - 1.0);
  };
  for (auto& v : A) v = rnd();
  for (auto& v : B) v = rnd();
  const double gflop = 2.0 * M * N * K * 1e-9;
  auto run_aft = [&] {
    aft::gemm<T>(s.ta, s.tb, M, N, K, T(1), A.data(), lda, B.data(), ldb, T(0), C.data(), N);
  };
  std::vector<double> t_aft, t_blas;
  // Three rounds of (aft block, BLAS block), so that both see the same stretches of load.
  const int rounds = reps >= 3 ? 3 : 1;
  for (int r = 0; r < rounds; ++r) {
    const int n = reps * (r + 1) / rounds - reps * r / rounds;
    time_block(n, &t_aft, run_aft);
#if AFT_HAVE_OPENBLAS
    pause();
    auto ta = s.ta ? CblasTrans : CblasNoTrans, tb = s.tb ? CblasTrans : CblasNoTrans;
    time_block(n, &t_blas, [&] {
      if constexpr (sizeof(T) == 4)
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                    Cref.data(), N);
      else
        cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1.0, A.data(), lda, B.data(), ldb, 0.0,
                    Cref.data(), N);
    });
    pause();
#endif
  }
  const double aft_med = gflop / median(t_aft);
  const double aft_best = gflop / *std::min_element(t_aft.begin(), t_aft.end());
  std::printf("| %-18s | %s | %c%c | %5lld | %5lld | %5lld | %7.1f | %7.1f |", s.what,
              sizeof(T) == 4 ? "f32" : "f64", s.ta ? 'T' : 'N', s.tb ? 'T' : 'N',
              static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
              aft_med, aft_best);
#if AFT_HAVE_OPENBLAS
  const double blas_med = gflop / median(t_blas);
  const double blas_best = gflop / *std::min_element(t_blas.begin(), t_blas.end());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < M * N; ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(C[i]) - Cref[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(Cref[i])));
  }
  std::printf(" %7.1f | %7.1f | %5.2f | %.0e |\n", blas_med, blas_best, aft_med / blas_med,
              diff / scale);
#else
  std::printf(" - | - | - | - |\n");
#endif
  std::fflush(stdout);
}

void usage() {
  std::printf(
      "usage: bench_matmul [--threads N] [--reps N] [--quick] [--isa avx512|avx2|scalar]\n"
      "  GFLOP/s (median of --reps runs) of aft::gemm vs OpenBLAS on the same thread count.\n"
      "  --threads N  threads for both libraries (default: aft's default, AFT_NUM_THREADS)\n"
      "  --reps N     timed runs per shape and library (default 9)\n"
      "  --quick      square sizes only\n"
      "  --isa NAME   aft's micro-kernel path (default: AFT_CPU_ISA, else the widest the CPU has)\n"
      "For OpenBLAS's best kernels run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./bench_matmul\n");
}

}  // namespace

int main(int argc, char** argv) {
  int threads = aft::num_threads(), reps = 9;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--isa" && i + 1 < argc) {
      const std::string name = argv[++i];
      bool known = false;
      for (aft::GemmIsa isa : aft::kGemmIsas)
        if (name == aft::gemm_isa_name(isa)) {
          if (!aft::gemm_isa_supported(isa)) {
            std::fprintf(stderr, "bench_matmul: this CPU lacks --isa %s\n", name.c_str());
            return 2;
          }
          aft::gemm_set_isa(isa);
          known = true;
        }
      if (!known) {
        std::fprintf(stderr, "bench_matmul: unknown --isa '%s'\n", name.c_str());
        usage();
        return 2;
      }
    } else {
      std::fprintf(stderr, "bench_matmul: unknown argument '%s'\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (threads < 1 || reps < 1) {
    std::fprintf(stderr, "bench_matmul: --threads and --reps must be >= 1\n");
    return 2;
  }
  aft::set_num_threads(threads);
  std::printf("CPU: %s (%u hardware threads)\n", cpu_model().c_str(),
              std::thread::hardware_concurrency());
  std::printf("aft gemm paths this CPU supports:");
  for (aft::GemmIsa isa : aft::kGemmIsas)
    if (aft::gemm_isa_supported(isa)) std::printf(" %s", aft::gemm_isa_name(isa));
  std::printf("\nthreads: %d, reps: %d (median), aft micro-kernel: %s\n", threads, reps,
              aft::gemm_kernel_name());
#if AFT_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
  std::printf("OpenBLAS: %s, core %s\n", openblas_get_config(), openblas_get_corename());
  for (const char* v : {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"})
    if (const char* e = std::getenv(v))
      std::printf("warning: %s=%s is set; OpenBLAS may not use its best kernel\n", v, e);
#endif
  std::printf(
      "\nGFLOP/s = 2·M·N·K / time; median and best of %d runs each; ratio = aft median / BLAS "
      "median;\nrel diff = max |C_aft - C_blas| / max |C_blas|. op: N or T for op(A), op(B).\n\n",
      reps);
  std::printf("| shape              | dt  | op |     M |     N |     K | aft med | aft best |"
              " BLAS med | BLAS best | ratio | rel diff |\n"
              "|--------------------|-----|----|------:|------:|------:|--------:|---------:|"
              "---------:|----------:|------:|---------:|\n");
  // Transformer layer, T = 8192 tokens (e.g. batch 8 x 1024), D = 256, MLP 4D:
  // forward x @ W (NN); backward dX = G @ W^T (NT), dW = X^T @ G (TN).
  constexpr int64_t T = 8192, D = 256;
  std::vector<Shape3> shapes = {
      {"square", false, false, 256, 256, 256, false},
      {"square", false, false, 512, 512, 512, false},
      {"square", false, false, 1024, 1024, 1024, false},
      {"square", false, false, 2048, 2048, 2048, false},
      {"square", false, false, 512, 512, 512, true},
      {"square", false, false, 1024, 1024, 1024, true},
  };
  if (!quick) {
    std::vector<Shape3> layer = {
        {"square A^T B^T", true, true, 1024, 1024, 1024, false},
        {"QKV fwd x@W", false, false, T, 3 * D, D, false},
        {"QKV bwd dX=G@W^T", false, true, T, D, 3 * D, false},
        {"QKV bwd dW=X^T@G", true, false, D, 3 * D, T, false},
        {"MLP up fwd", false, false, T, 4 * D, D, false},
        {"MLP up bwd dX", false, true, T, D, 4 * D, false},
        {"MLP up bwd dW", true, false, D, 4 * D, T, false},
        {"MLP down fwd", false, false, T, D, 4 * D, false},
        {"MLP down bwd dX", false, true, T, 4 * D, D, false},
        {"MLP down bwd dW", true, false, 4 * D, D, T, false},
        // A dW with few outputs (a 128-wide layer): too few tiles of C for the threads, so
        // aft splits K (core/gemm/gemm.cpp, gemm_split_k).
        {"small dW=X^T@G", true, false, 128, 128, T, false},
        {"QKV fwd x@W", false, false, T, 3 * D, D, true},
    };
    shapes.insert(shapes.end(), layer.begin(), layer.end());
  }
  for (const Shape3& s : shapes) {
    if (s.f64)
      run_shape<double>(s, reps);
    else
      run_shape<float>(s, reps);
  }
  return 0;
}
