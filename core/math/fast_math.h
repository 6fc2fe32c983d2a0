// core/math/fast_math.h: exp, tanh and sigmoid for float32 CPU loops, written so the compiler
// vectorises them (straight-line arithmetic, bit casts and selects; no calls, no branches).
// glibc's expf/tanhf are scalar calls: in a training step of the tiny character LM, GELU's
// tanh alone (tanhf -> expm1f) took over a quarter of the time.
//
// fast_exp: Cody-Waite range reduction x = n·ln2 + f with |f| <= ln2/2 (ln2 split into a part
// exact in float and the rest), e^f by Cephes' degree-6 polynomial, and 2^n assembled in the
// exponent bits in two halves so that n = 128 (x up to 88.72) still works. Relative error
// about 1e-7 (2 ulp; tests/test_fast_math.cpp measures it against double). NaN stays NaN,
// x > 88.7228 gives +inf, x < -87.5 gives 0 (true results there are below 1.1e-38: subnormals
// are flushed).
// fast_tanh: |x| < 0.625: Cephes' odd polynomial x + x·z·P(z), z = x² (no cancellation near 0);
// otherwise sign(x)·(1 − 2/(e^{2|x|} + 1)). fast_sigmoid: 1/(1 + e^{−x}) (e^{−x} = inf gives 0).
// exp_poly is the one body of fast_exp and of the CPU AFT kernels' 8-lane vexp (ops/aft_common.h).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace aft::fastm {

#if !defined(__CUDACC__)
// 8 floats in one 32-byte GCC vector (the CPU AFT kernels' lane type, ops/aft_common.h), and its
// int32 twin. On a CPU without AVX the compiler splits them in two SSE halves.
typedef float F32x8 __attribute__((vector_size(32)));
typedef int32_t I32x8 __attribute__((vector_size(32)));
#endif

namespace detail {
inline int32_t to_i32(float x) { return static_cast<int32_t>(x); }
inline float bits_to_f32(int32_t b) { return std::bit_cast<float>(b); }
#if !defined(__CUDACC__)
inline I32x8 to_i32(F32x8 x) { return __builtin_convertvector(x, I32x8); }
inline F32x8 bits_to_f32(I32x8 b) { return (F32x8)b; }  // a vector cast reinterprets the bits
#endif
}  // namespace detail

// e^x for F = float or F32x8 (lane-wise): one body, so the scalar loops and the vector kernels
// round alike. `cond ? a : b` is a lane-wise select on vectors.
template <class F>
inline F exp_poly(F x) {
  const float magic = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer
  F xc = x < -87.5f ? -87.5f : x;
  xc = xc > 88.75f ? 88.75f : xc;
  F n = (xc * 1.44269504088896341f + magic) - magic;
  F f = xc - n * 0.693145751953125f;       // ln2 split in a high part exact in float ...
  f = f - n * 1.428606765330187045e-06f;  // ... and the rest
  F p = f * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * f + 8.3334519073e-3f;
  p = p * f + 4.1665795894e-2f;
  p = p * f + 1.6666665459e-1f;
  p = p * f + 5.0000001201e-1f;
  p = p * f * f + f + 1.0f;
  const auto ni = detail::to_i32(n);
  const auto n1 = ni >> 1;
  F y = p * detail::bits_to_f32((n1 + 127) << 23) * detail::bits_to_f32((ni - n1 + 127) << 23);
  y = x < -87.5f ? 0.0f : y;
  y = x > 88.72283935546875f ? std::numeric_limits<float>::infinity() : y;
  return x != x ? x : y;
}

inline float fast_exp(float x) { return exp_poly(x); }

inline float fast_tanh(float x) {
  const float a = x < 0 ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float big = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
  const float r = a < 0.625f ? small : (x < 0 ? -big : big);
  return x != x ? x : r;
}

inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

}  // namespace aft::fastm
