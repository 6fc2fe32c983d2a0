// core/gemm/kernel_avx512.cpp: the AVX-512 micro-kernels of the CPU GEMM (core/gemm/kernels.h),
// float 14x32 and double 14x16, compiled with a target attribute so that builds for any x86-64
// contain them; gemm.cpp calls them only when cpu_has_avx512() says so.
//
// Register budget (32 zmm): 14 rows x 2 vectors = 28 accumulators, 2 vectors of the B
// micro-panel and one broadcast of A. Per p: 2 loads of B, 14 broadcasts of A, 28 FMAs. Two
// FMA pipes of latency 4 (Zen 4/5, Ice Lake and later) need only 8 independent accumulators;
// 28 keep the loads per FMA low (16 / 28) so that the FMA pipes, not the load ports, set the
// pace. A tile row is a C row: 2 zmm of contiguous values.
#include "core/gemm/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AFT_AVX512 __attribute__((target("avx512f")))

namespace aft::gemm_detail {
namespace {

// One zmm of T: the intrinsics the kernel needs.
template <class T>
struct Zmm;
template <>
struct Zmm<float> {
  using V = __m512;
  static constexpr int n = 16;
  AFT_AVX512 static V zero() { return _mm512_setzero_ps(); }
  AFT_AVX512 static V set1(float x) { return _mm512_set1_ps(x); }
  AFT_AVX512 static V load(const float* p) { return _mm512_load_ps(p); }
  AFT_AVX512 static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  AFT_AVX512 static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  AFT_AVX512 static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  AFT_AVX512 static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct Zmm<double> {
  using V = __m512d;
  static constexpr int n = 8;
  AFT_AVX512 static V zero() { return _mm512_setzero_pd(); }
  AFT_AVX512 static V set1(double x) { return _mm512_set1_pd(x); }
  AFT_AVX512 static V load(const double* p) { return _mm512_load_pd(p); }
  AFT_AVX512 static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  AFT_AVX512 static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
  AFT_AVX512 static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  AFT_AVX512 static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
};

#define AFT_TILE_TARGET AFT_AVX512
#include "core/gemm/kernel_tile.h"
#undef AFT_TILE_TARGET

}  // namespace

AFT_AVX512 void kernel_f32_avx512(int64_t kc, const float* a, const float* b, float* c,
                                  int64_t ldc, float alpha, float beta) {
  using Cfg = Config<float, Isa::avx512>;
  static_assert(Cfg::NR == 2 * Zmm<float>::n);
  tile_kernel<Zmm<float>, float, Cfg::MR>(kc, a, b, c, ldc, alpha, beta);
}

AFT_AVX512 void kernel_f64_avx512(int64_t kc, const double* a, const double* b, double* c,
                                  int64_t ldc, double alpha, double beta) {
  using Cfg = Config<double, Isa::avx512>;
  static_assert(Cfg::NR == 2 * Zmm<double>::n);
  tile_kernel<Zmm<double>, double, Cfg::MR>(kc, a, b, c, ldc, alpha, beta);
}

bool cpu_has_avx512() {
  // __builtin_cpu_supports also checks (XGETBV) that the OS saves the zmm state.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}

}  // namespace aft::gemm_detail

#endif
