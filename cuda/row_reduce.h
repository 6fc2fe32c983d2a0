// cuda/row_reduce.h: what the row kernels (softmax.cu, layer_norm.cu, cross_entropy.cu) share:
// reducing one row with a team of threads, the launch shape of such a team, and the two
// running statistics they reduce (the online softmax pair and Welford's mean/variance).
//
// Thread mapping of a row kernel: blockDim = (team, rows per block). A team of 32 threads (one
// warp) handles a row of n <= 1024 elements, 4 rows a block, and reduces with shuffles alone;
// a longer row gets a whole block (256 or 512 threads, blockDim.y = 1), whose warps combine
// their results through shared memory. Thread x of a team reads elements x, x + team, ... of
// its row, so a warp's loads are 32 neighbouring elements (coalesced).
//
// Sums accumulate in double for both dtypes, as the CPU ops sum float32 in float64, so float32
// results agree with the CPU's to a few ulp even where a sum cancels (a column sum of
// gradients). The kernels load an element per add or two, so the float64 adds should not set
// their speed (an estimate; bench/bench_cuda_ops measures these kernels on a GPU).
//
// Every reduction is a fixed tree (lane 0 gathers its warp by halving distances, then each
// thread combines the warps' partials in warp order), so the result has the same bits for any
// scheduling, and every thread of the team receives exactly those bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/launch.h"

namespace aft::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

// v of the lane `delta` above (a lane past the warp's end keeps its own). Any trivially
// copyable V of a multiple of 4 bytes: float and double directly, a struct word by word (as
// CUB does; CUDA has no shuffle of a struct).
template <class V>
__device__ __forceinline__ V shfl_down(V v, int delta) {
  if constexpr (std::is_same_v<V, float> || std::is_same_v<V, double>) {
    return __shfl_down_sync(kFullMask, v, delta);
  } else {
    static_assert(sizeof(V) % 4 == 0, "shfl_down: size must be a multiple of 4 bytes");
    int w[sizeof(V) / 4];
    memcpy(w, &v, sizeof(V));
    for (int k = 0; k < static_cast<int>(sizeof(V) / 4); ++k) w[k] = __shfl_down_sync(kFullMask, w[k], delta);
    memcpy(&v, w, sizeof(V));
    return v;
  }
}

// Lane 0's v, in every lane.
template <class V>
__device__ __forceinline__ V shfl_lane0(V v) {
  if constexpr (std::is_same_v<V, float> || std::is_same_v<V, double>) {
    return __shfl_sync(kFullMask, v, 0);
  } else {
    int w[sizeof(V) / 4];
    memcpy(w, &v, sizeof(V));
    for (int k = 0; k < static_cast<int>(sizeof(V) / 4); ++k) w[k] = __shfl_sync(kFullMask, w[k], 0);
    memcpy(&v, w, sizeof(V));
    return v;
  }
}

// f folded over the 32 lanes of the calling warp (all must call it): lane 0 gathers
// f(v_0, v_16), ... by halving distances, then broadcasts. Every lane returns lane 0's bits.
template <class V, class F>
__device__ V warp_reduce(V v, F f) {
  for (int d = 16; d > 0; d >>= 1) v = f(v, shfl_down(v, d));
  return shfl_lane0(v);
}

// f folded over the team of the calling thread (blockDim.x threads; every thread of the block
// must call it). scratch: shared memory of at least 32 V, unused when the team is one warp.
// Contains two barriers when blockDim.x > 32: the second lets the caller reuse scratch.
template <class V, class F>
__device__ V team_reduce(V v, F f, V* scratch) {
  v = warp_reduce(v, f);
  if (blockDim.x == 32) return v;
  const unsigned warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  if (threadIdx.x % 32 == 0) scratch[warp] = v;
  __syncthreads();
  V r = scratch[0];
  for (unsigned w = 1; w < nwarps; ++w) r = f(r, scratch[w]);
  __syncthreads();
  return r;
}

// The row a thread of a row kernel works on.
__device__ __forceinline__ int64_t team_row() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
}

struct RowGrid {
  dim3 grid, block;
};

// Launch shape for `rows` rows of n elements (see the file comment).
inline RowGrid row_grid(int64_t rows, int64_t n) {
  if (n <= 1024) return {dim3(blocks_for(rows, 4)), dim3(32, 4)};
  return {dim3(static_cast<unsigned>(rows)), dim3(n <= 8192 ? 256 : 512)};
}

template <class T>
struct SumOp {
  __device__ T operator()(T a, T b) const { return a + b; }
};

// Two sums reduced together (one tree, one set of barriers).
template <class T>
struct Sum2 {
  T a, b;
};

template <class T>
struct Sum2Op {
  __device__ Sum2<T> operator()(Sum2<T> u, Sum2<T> v) const { return {u.a + v.a, u.b + v.b}; }
};

// ---- online softmax statistics (Milakov & Gimelshein 2018): over a set of values x,
//   m = max x (NaN skipped),  s = sum exp(x - m)   (a NaN x makes s NaN)
// exp is taken in T, s accumulates in double for both dtypes (as the CPU op sums float32 in
// float64). A set that is all -inf (or empty) has m = -inf, s = 0; finish() turns m = +inf
// into s = NaN. So the softmax of a lane holding NaN or +inf, or only -inf, is NaN, as on the
// CPU.
template <class T>
struct MaxSum {
  T m;
  double s;
};

template <class T>
__device__ __forceinline__ MaxSum<T> maxsum_init() {
  return {static_cast<T>(-INFINITY), 0.0};
}

// Adds x:  x > m: s = s·exp(m - x) + 1, m = x;  else s += exp(x - m)  (x = -inf adds 0).
template <class T>
__device__ __forceinline__ MaxSum<T> maxsum_push(MaxSum<T> p, T x) {
  if (x > p.m) {
    p.s = p.s * static_cast<double>(std::exp(p.m - x)) + 1.0;
    p.m = x;
  } else if (x != static_cast<T>(-INFINITY)) {
    p.s += static_cast<double>(std::exp(x - p.m));
  }
  return p;
}

// Union of two sets: m = max(a.m, b.m), s = a.s·exp(a.m - m) + b.s·exp(b.m - m), the factor 1
// when the maxima are equal (so -inf - -inf never makes a NaN).
template <class T>
struct MaxSumOp {
  __device__ MaxSum<T> operator()(MaxSum<T> a, MaxSum<T> b) const {
    const T m = a.m > b.m ? a.m : b.m;
    const double fa = a.m == m ? 1.0 : static_cast<double>(std::exp(a.m - m));
    const double fb = b.m == m ? 1.0 : static_cast<double>(std::exp(b.m - m));
    return {m, a.s * fa + b.s * fb};
  }
};

template <class T>
__device__ __forceinline__ MaxSum<T> maxsum_finish(MaxSum<T> p) {
  if (p.m == static_cast<T>(INFINITY)) p.s = NAN;
  return p;
}

// ---- Welford's running mean and sum of squared deviations, merged with Chan et al.'s rule:
//   n = na + nb,  d = mean_b - mean_a,  mean = mean_a + d·nb/n,  m2 = m2a + m2b + d²·na·nb/n
// (no cancellation as in E[x²] - E[x]²). The count is a T: exact up to 2^24 (float).
template <class T>
struct Welford {
  T n, mean, m2;
};

template <class T>
__device__ __forceinline__ Welford<T> welford_push(Welford<T> w, T x) {
  w.n += T(1);
  const T d = x - w.mean;
  w.mean += d / w.n;
  w.m2 += d * (x - w.mean);
  return w;
}

template <class T>
struct WelfordOp {
  __device__ Welford<T> operator()(Welford<T> a, Welford<T> b) const {
    if (b.n == T(0)) return a;
    if (a.n == T(0)) return b;
    const T n = a.n + b.n, d = b.mean - a.mean, fb = b.n / n;
    return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
  }
};

}  // namespace aft::cuda
