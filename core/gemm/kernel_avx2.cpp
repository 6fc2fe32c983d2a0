// core/gemm/kernel_avx2.cpp: the AVX2+FMA micro-kernels of the CPU GEMM (core/gemm/kernels.h),
// float 6x16 and double 6x8, compiled with a target attribute so that builds for any x86-64
// contain them; gemm.cpp calls them only when cpu_has_avx2_fma() says so.
//
// Register budget (16 ymm): 6 rows x 2 vectors = 12 accumulators, 2 vectors of the B
// micro-panel and one broadcast of A. Per p: 2 loads of B, 6 broadcasts of A, 12 FMAs (Zen 3:
// 2 FMA pipes of latency 4, so 12 independent accumulators keep both busy).
#include "core/gemm/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AFT_AVX2 __attribute__((target("avx2,fma")))

namespace aft::gemm_detail {
namespace {

// One ymm of T: the intrinsics the kernel needs.
template <class T>
struct Ymm;
template <>
struct Ymm<float> {
  using V = __m256;
  static constexpr int n = 8;
  AFT_AVX2 static V zero() { return _mm256_setzero_ps(); }
  AFT_AVX2 static V set1(float x) { return _mm256_set1_ps(x); }
  AFT_AVX2 static V load(const float* p) { return _mm256_load_ps(p); }
  AFT_AVX2 static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  AFT_AVX2 static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  AFT_AVX2 static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  AFT_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
template <>
struct Ymm<double> {
  using V = __m256d;
  static constexpr int n = 4;
  AFT_AVX2 static V zero() { return _mm256_setzero_pd(); }
  AFT_AVX2 static V set1(double x) { return _mm256_set1_pd(x); }
  AFT_AVX2 static V load(const double* p) { return _mm256_load_pd(p); }
  AFT_AVX2 static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  AFT_AVX2 static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  AFT_AVX2 static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  AFT_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
};

#define AFT_TILE_TARGET AFT_AVX2
#include "core/gemm/kernel_tile.h"
#undef AFT_TILE_TARGET

}  // namespace

AFT_AVX2 void kernel_f32_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                              float alpha, float beta) {
  using Cfg = Config<float, Isa::avx2>;
  static_assert(Cfg::NR == 2 * Ymm<float>::n);
  tile_kernel<Ymm<float>, float, Cfg::MR>(kc, a, b, c, ldc, alpha, beta);
}

AFT_AVX2 void kernel_f64_avx2(int64_t kc, const double* a, const double* b, double* c,
                              int64_t ldc, double alpha, double beta) {
  using Cfg = Config<double, Isa::avx2>;
  static_assert(Cfg::NR == 2 * Ymm<double>::n);
  tile_kernel<Ymm<double>, double, Cfg::MR>(kc, a, b, c, ldc, alpha, beta);
}

bool cpu_has_avx2_fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

}  // namespace aft::gemm_detail

#endif
