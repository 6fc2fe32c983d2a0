// core/gemm/kernel_scalar.cpp: the plain C++ micro-kernels of the CPU GEMM (the "scalar" path
// of core/gemm/kernels.h), for CPUs without AVX2+FMA and for testing the other paths against.
// "Scalar" names the source, not the machine code: the compiler may vectorise the j loops for
// whatever the build targets (SSE2 in a portable x86-64 build).
#include "core/gemm/kernels.h"

namespace aft::gemm_detail {
namespace {

// Two rows of the tile at a time: 2·NR accumulators fit the 16 registers of SSE2, so the
// compiler keeps them in registers and vectorises the j loop; B's micro-panel (L1) is read
// MR/2 times. Each accumulator still sums p in increasing order.
template <class T, int MR, int NR>
void kernel_portable(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
  static_assert(MR % 2 == 0);
  for (int i = 0; i < MR; i += 2) {
    T acc0[NR] = {}, acc1[NR] = {};
    for (int64_t p = 0; p < kc; ++p) {
      const T* bp = b + p * NR;
      const T a0 = a[p * MR + i], a1 = a[p * MR + i + 1];
      for (int j = 0; j < NR; ++j) {
        acc0[j] += a0 * bp[j];
        acc1[j] += a1 * bp[j];
      }
    }
    T* c0 = c + i * ldc;
    T* c1 = c0 + ldc;
    for (int j = 0; j < NR; ++j) {
      c0[j] = beta == T(0) ? alpha * acc0[j] : alpha * acc0[j] + beta * c0[j];
      c1[j] = beta == T(0) ? alpha * acc1[j] : alpha * acc1[j] + beta * c1[j];
    }
  }
}

}  // namespace

void kernel_f32_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       float alpha, float beta) {
  using Cfg = Config<float, Isa::scalar>;
  kernel_portable<float, Cfg::MR, Cfg::NR>(kc, a, b, c, ldc, alpha, beta);
}

void kernel_f64_scalar(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       double alpha, double beta) {
  using Cfg = Config<double, Isa::scalar>;
  kernel_portable<double, Cfg::MR, Cfg::NR>(kc, a, b, c, ldc, alpha, beta);
}

}  // namespace aft::gemm_detail

// Builds for other CPUs than x86 have only the scalar path: the AVX kernels are never
// selected there (cpu_has_* is false), but gemm.cpp's dispatch table names them.
#if !defined(__x86_64__) && !defined(__i386__)
#include "core/error.h"

namespace aft::gemm_detail {
#define AFT_NO_KERNEL(name, T)                                          \
  void name(int64_t, const T*, const T*, T*, int64_t, T, T) {           \
    AFT_ASSERT(false && #name " called on a non-x86 build");            \
  }
AFT_NO_KERNEL(kernel_f32_avx2, float)
AFT_NO_KERNEL(kernel_f64_avx2, double)
AFT_NO_KERNEL(kernel_f32_avx512, float)
AFT_NO_KERNEL(kernel_f64_avx512, double)
#undef AFT_NO_KERNEL
bool cpu_has_avx2_fma() { return false; }
bool cpu_has_avx512() { return false; }
}  // namespace aft::gemm_detail
#endif
