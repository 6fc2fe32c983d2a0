// core/gemm/kernel_tile.h: the body of the SIMD micro-kernels (core/gemm/kernels.h), shared
// by kernel_avx2.cpp and kernel_avx512.cpp. Each includes it inside its own anonymous
// namespace after defining AFT_TILE_TARGET (its target attribute) and a vector traits class
// (V, n lanes, zero / set1 / load / loadu / storeu / mul / fma), so the template is compiled
// once per instruction set.
//
// The tile is MR rows x 2 vectors of C. Per p: 2 aligned loads of the B micro-panel, MR
// broadcasts of A and 2·MR FMAs into 2·MR accumulators, summing p in increasing order. The
// loops over rows are fully unrolled, so acc[i][*] live in registers.
// No include guard: meant to be included once per instruction-set file.

template <class Vec, class T, int MR>
AFT_TILE_TARGET inline void tile_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc,
                                        T alpha, T beta) {
  using V = typename Vec::V;
  constexpr int W = Vec::n, NR = 2 * W;
  V acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = Vec::zero();
  // The C tile is needed at the end: start fetching its rows now.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < kc; ++p) {
    // B is read NR values per p: fetch 8 p ahead (one prefetch per cache line).
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    if constexpr (NR * sizeof(T) > 64)
      _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR + 64 / sizeof(T)), _MM_HINT_T0);
    const V b0 = Vec::load(b), b1 = Vec::load(b + W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V av = Vec::set1(a[i]);
      acc[i][0] = Vec::fma(av, b0, acc[i][0]);
      acc[i][1] = Vec::fma(av, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  // C = alpha · acc (+ beta · C): C is only read when beta != 0.
  const V va = Vec::set1(alpha), vb = Vec::set1(beta);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      Vec::storeu(c + i * ldc, Vec::mul(va, acc[i][0]));
      Vec::storeu(c + i * ldc + W, Vec::mul(va, acc[i][1]));
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      Vec::storeu(ci, Vec::fma(va, acc[i][0], Vec::mul(vb, Vec::loadu(ci))));
      Vec::storeu(ci + W, Vec::fma(va, acc[i][1], Vec::mul(vb, Vec::loadu(ci + W))));
    }
  }
}
