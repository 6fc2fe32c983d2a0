// cuda/emu/intrinsics.h: CUDA's device functions that need no scheduler, for the SIMT emulator
// (included by cuda/emu/emulator.h): math intrinsics, min/max, atomics, bit tricks and the
// cache-hinted loads. All in the global namespace, with CUDA's names and overload sets, so a
// kernel that compiles here compiles with nvcc (and what CUDA lacks, such as atomicAdd on a
// signed 64-bit integer, is missing here too: a compile error, not a wrong answer).
//
// The standard math functions (expf, logf, sqrtf, fmaf, erff, tanhf, exp2f, log2f, copysignf,
// fminf, fmaxf, isinf, isnan, INFINITY, and the double versions) come from <math.h>, which
// puts them in the global namespace as CUDA does.
//
// Accuracy. The fast intrinsics are modelled on the GPU's instructions rather than the libm
// functions: __expf(x) = exp2f(x * log2(e)) rounds x * log2(e) to float first, as the GPU's
// ex2.approx does, so its error grows with |x| (a few ulp near 0, ~|x| ulp for large x); the
// GPU's approximate ex2/lg2/sin also lose a few more bits that are not modelled. A tolerance
// must hold for the GPU's version: test on a GPU when one is lent. nvcc also contracts a*b+c
// into an fma by default, g++ in ISO mode does not: results may differ in the last bits.
#pragma once

#include <math.h>  // NOLINT(modernize-deprecated-headers): the global-namespace math functions

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>

// ---------------------------------------------------------------- math intrinsics

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float fdividef(float x, float y) { return x / y; }

inline float __expf(float x) { return exp2f(x * 1.4426950408889634f); }
inline float __exp10f(float x) { return exp2f(x * 3.3219280948873622f); }
inline float __logf(float x) { return log2f(x) * 0.6931471805599453f; }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log2f(x) * 0.3010299956639812f; }
inline float __powf(float x, float y) { return exp2f(y * log2f(x)); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }

// x / y; like the GPU's approximate division, 0 for 2^126 < |y| < 2^128 (NaN if x is infinite).
inline float __fdividef(float x, float y) {
  float ay = fabsf(y);
  if (ay > 8.507059e37f && ay < INFINITY) return isinf(x) ? NAN : 0.0f;
  return x / y;
}

// Clamps to [0, 1]; NaN becomes 0.
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }

// Correctly rounded operations (round to nearest): what plain operators give here.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline double __dsqrt_rn(double a) { return sqrt(a); }

// Conversions: _rn rounds to nearest even, _rz toward zero.
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(nearbyintf(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline int __double2int_rn(double x) { return static_cast<int>(nearbyint(x)); }

// Bit reinterpretation.
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

// ---------------------------------------------------------------- min / max

// CUDA's overloads for integers and floating point (mixed signed/unsigned goes to unsigned).
#define AFT_EMU_MINMAX(T)                                \
  inline T min(T a, T b) { return b < a ? b : a; }       \
  inline T max(T a, T b) { return a < b ? b : a; }
AFT_EMU_MINMAX(int)
AFT_EMU_MINMAX(unsigned)
AFT_EMU_MINMAX(long)
AFT_EMU_MINMAX(unsigned long)
AFT_EMU_MINMAX(long long)
AFT_EMU_MINMAX(unsigned long long)
#undef AFT_EMU_MINMAX
inline unsigned min(int a, unsigned b) { return min(static_cast<unsigned>(a), b); }
inline unsigned min(unsigned a, int b) { return min(a, static_cast<unsigned>(b)); }
inline unsigned max(int a, unsigned b) { return max(static_cast<unsigned>(a), b); }
inline unsigned max(unsigned a, int b) { return max(a, static_cast<unsigned>(b)); }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ---------------------------------------------------------------- bit tricks

inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((uint64_t(a) * b) >> 32); }
inline int __mulhi(int a, int b) { return static_cast<int>((int64_t(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}

// ---------------------------------------------------------------- loads and stores

// Read-only / streaming cache hints: plain loads and stores here.
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }

// ---------------------------------------------------------------- atomics
//
// Real atomic operations (blocks may run on several OS threads at once), relaxed as on the
// GPU; __threadfence() orders them. Each returns the old value.

namespace aft::cuda::emu::detail {
template <class T> T atomic_add(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed); }
template <class T> T atomic_exch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed); }
template <class T> T atomic_cas(T* p, T expected, T desired) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);
  return expected;  // the old value, whether or not the exchange happened
}
// old = *p; *p = f(old), atomically (a compare-and-swap loop).
template <class T, class F> T atomic_update(T* p, F f) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace aft::cuda::emu::detail

#define AFT_EMU_ATOMIC_ARITH(T)                                                              \
  inline T atomicAdd(T* p, T v) { return ::aft::cuda::emu::detail::atomic_add(p, v); }      \
  inline T atomicExch(T* p, T v) { return ::aft::cuda::emu::detail::atomic_exch(p, v); }
AFT_EMU_ATOMIC_ARITH(int)
AFT_EMU_ATOMIC_ARITH(unsigned)
AFT_EMU_ATOMIC_ARITH(unsigned long long)
AFT_EMU_ATOMIC_ARITH(float)
#undef AFT_EMU_ATOMIC_ARITH
inline double atomicAdd(double* p, double v) { return ::aft::cuda::emu::detail::atomic_add(p, v); }
inline int atomicSub(int* p, int v) { return ::aft::cuda::emu::detail::atomic_add(p, -v); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return ::aft::cuda::emu::detail::atomic_add(p, 0u - v); }

#define AFT_EMU_ATOMIC_CAS(T)                                                                        \
  inline T atomicCAS(T* p, T compare, T val) { return ::aft::cuda::emu::detail::atomic_cas(p, compare, val); }
AFT_EMU_ATOMIC_CAS(int)
AFT_EMU_ATOMIC_CAS(unsigned)
AFT_EMU_ATOMIC_CAS(unsigned long long)
AFT_EMU_ATOMIC_CAS(unsigned short)
#undef AFT_EMU_ATOMIC_CAS

#define AFT_EMU_ATOMIC_MINMAX(T)                                                                  \
  inline T atomicMax(T* p, T v) {                                                                 \
    return ::aft::cuda::emu::detail::atomic_update(p, [v](T old) { return old < v ? v : old; }); \
  }                                                                                               \
  inline T atomicMin(T* p, T v) {                                                                 \
    return ::aft::cuda::emu::detail::atomic_update(p, [v](T old) { return v < old ? v : old; }); \
  }
AFT_EMU_ATOMIC_MINMAX(int)
AFT_EMU_ATOMIC_MINMAX(unsigned)
AFT_EMU_ATOMIC_MINMAX(long long)
AFT_EMU_ATOMIC_MINMAX(unsigned long long)
#undef AFT_EMU_ATOMIC_MINMAX

#define AFT_EMU_ATOMIC_BITS(T)                                                                             \
  inline T atomicAnd(T* p, T v) { return ::aft::cuda::emu::detail::atomic_update(p, [v](T o) { return static_cast<T>(o & v); }); } \
  inline T atomicOr(T* p, T v) { return ::aft::cuda::emu::detail::atomic_update(p, [v](T o) { return static_cast<T>(o | v); }); }  \
  inline T atomicXor(T* p, T v) { return ::aft::cuda::emu::detail::atomic_update(p, [v](T o) { return static_cast<T>(o ^ v); }); }
AFT_EMU_ATOMIC_BITS(int)
AFT_EMU_ATOMIC_BITS(unsigned)
AFT_EMU_ATOMIC_BITS(unsigned long long)
#undef AFT_EMU_ATOMIC_BITS

// atomicInc: old >= v ? 0 : old + 1.  atomicDec: (old == 0 || old > v) ? v : old - 1.
inline unsigned atomicInc(unsigned* p, unsigned v) {
  return ::aft::cuda::emu::detail::atomic_update(p, [v](unsigned o) { return o >= v ? 0u : o + 1; });
}
inline unsigned atomicDec(unsigned* p, unsigned v) {
  return ::aft::cuda::emu::detail::atomic_update(p, [v](unsigned o) { return (o == 0 || o > v) ? v : o - 1; });
}

// Memory fences. __threadfence_block() needs no fence here (a block runs on one OS thread) but
// must stop the compiler from moving memory accesses across it.
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
