// cuda/aft_common.cuh: what the AFT kernels (cuda/aft_tiles.cu, aft_full.cu, aft_local.cu,
// aft_simple.cu, aft_conv.cu) share: the scalar engine of core/math/aft.h (the stable running
// sum Acc, the gate, far_grad; shared with the CPU kernels) under the <cmath> policy, the gate's
// backward kernel, and the chunked scans that give every variant its prefix/suffix sums in
// parallel. docs/aft.md explains the math; the notation is that of core/math/aft.h:
// s = k + w (exponent of a key seen from a row), L = log-sum-exp of the row, r = the
// normalised sum, y = sigmoid(q)·r, gr = g·sigmoid(q).
//
// Numerics (the same as the CPU's, which is what the parity tests check):
//   - exp is the full-precision std::exp of T (expf in float32: 2 ulp), never __expf, and
//     every exponent is relative to a running maximum, so no exp overflows and the largest
//     term of every forward sum is exactly 1 (Den >= 1: no 0/0).
//   - float32 tensors are computed in float32, float64 tensors in float64.
//   - sums are in a fixed order (no atomics): results depend only on the shapes.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/math/aft.h"
#include "cuda/kernel_common.h"

namespace aft::cuda::aftk {

// ---------------------------------------------------------------- the scalar engine
//
// core/math/aft.h (shared with the CPU kernels) under the <cmath> policy: one channel per thread.
template <class T>
using Acc = aft_math::Acc<aft_math::StdMath<T>>;

template <class T>
__device__ __forceinline__ void sigmoid2(T q, T& s, T& sd) {
  aft_math::sigmoid2<aft_math::StdMath<T>>(q, s, sd);
}

// The forward epilogue of one (row, channel) into y, L, r.
template <class T>
__device__ __forceinline__ void finish_row(const Acc<T>& acc, T q, T* y, T* L, T* r) {
  aft_math::finish_row<aft_math::StdMath<T>>(acc, q, *y, *L, *r);
}

template <class T>
__device__ __forceinline__ void far_grad(T k, T v, const Acc<T>& F, T& dv, T& dk) {
  aft_math::far_grad<aft_math::StdMath<T>>(k, v, F, dv, dk);
}

// Backward of the gate, elementwise over n values of [B, T, D]:
//   gr = g·sigmoid(q) (the gradient reaching r),   dq = g·r·sigmoid'(q)
// Either output may be null.
template <class T>
__global__ void gate_backward_kernel(const T* q, const T* g, const T* r, T* gr, T* dq, int64_t n) {
  AFT_KERNEL_LOOP(i, n) {
    T gri, dqi;
    aft_math::gate_grad<aft_math::StdMath<T>>(q[i], g[i], r[i], gri, dqi);
    if (gr) gr[i] = gri;
    if (dq) dq[i] = dqi;
  }
}

template <class T>
inline void launch_gate_backward(const T* q, const T* g, const T* r, T* gr, T* dq, int64_t n) {
  AFT_LAUNCH(gate_backward_kernel<T>, loop_blocks(n), kLoopThreads, 0, q, g, r, gr, dq, n);
}

// ---------------------------------------------------------------- chunked scans
//
// A causal sum over t (a prefix) or its mirror (a suffix) is computed in parallel in three
// steps instead of one sequential walk over T per thread (RWKV's WKV kernel): rows are cut into
// chunks of kChunk = 32; (1) each chunk's Acc is summed by one thread per (batch, chunk,
// channel); (2) a block per (batch, 32 channels) scans the chunk sums, 8 segments per channel
// whose totals are combined through shared memory (a thread walks n/8 chunks, n = T/32);
// (3) each kernel that needs the sum at a row starts from its chunk's exclusive prefix (or
// suffix) and walks at most 32 rows. Nothing is sized by T per thread, and the order of every
// merge is fixed by the shapes alone.
constexpr int kChunk = 32;
constexpr int kScanSegments = 8;

__host__ __device__ inline int64_t row_chunks(int64_t T_) { return (T_ + kChunk - 1) / kChunk; }
// Index of the chunk boundary at or below t (t a multiple of kChunk, or T itself -> n).
__host__ __device__ inline int64_t chunk_index(int64_t t, int64_t T_) { return t >= T_ ? row_chunks(T_) : t / kChunk; }

// Terms of the forward sums: key t' contributes e^{k}·(v, 1).
template <class T>
struct KeyTerm {
  const T* k;
  const T* v;
  __device__ void operator()(int64_t i, T& s, T& x, T& y) const {
    s = k[i];
    x = v[i];
    y = T(1);
  }
};

// Terms of the backward sums over targets: target t contributes e^{-L}·(gr, gr·r), with
// gr = g·sigmoid(q) recomputed, or gr given (q == nullptr: g is gr).
template <class T>
struct TargetTerm {
  const T* L;
  const T* r;
  const T* g;
  const T* q;
  __device__ void operator()(int64_t i, T& s, T& x, T& y) const {
    T gr = g[i];
    if (q) {
      T sg, sd;
      sigmoid2(q[i], sg, sd);
      gr *= sg;
    }
    s = -L[i];
    x = gr;
    y = gr * r[i];
  }
};

// S[b, c, d] = Acc of the terms of rows [c·32, min(T, c·32 + 32)) of channel d.
// grid (B · ceil(nch / 8), ceil(D / 32)), block (32 channels, 8 chunks).
template <class T, class Term>
__global__ void chunk_summary_kernel(Term term, Acc<T>* S, int64_t B, int64_t T_, int64_t D) {
  const int64_t nch = row_chunks(T_), per = (nch + 7) / 8;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * 32 + threadIdx.x;
  const int64_t b = blockIdx.x / per, c = (blockIdx.x % per) * 8 + threadIdx.y;
  if (d >= D || c >= nch) return;
  Acc<T> acc = Acc<T>::empty();
  const int64_t t1 = c * kChunk + kChunk < T_ ? c * kChunk + kChunk : T_;
  for (int64_t t = c * kChunk; t < t1; ++t) {
    T s, x, y;
    term((b * T_ + t) * D + d, s, x, y);
    acc.push(s, x, y);
  }
  S[(b * nch + c) * D + d] = acc;
}

// Over S[o, i, c] (o < outer, i < n, c < C), per (o, c):
//   pre[o, i, c] = merge of S[o, 0..i-1]   (i = 0..n; pre[o, 0] empty)
//   suf[o, i, c] = merge of S[o, i..n-1]   (i = 0..n; suf[o, n] empty)
//   tot[o, c]    = merge of S[o, 0..n-1]
// (each output may be null). grid (outer, ceil(C / 32)), block (32 channels, 8 segments).
template <class T>
__global__ void chunk_scan_kernel(const Acc<T>* S, Acc<T>* pre, Acc<T>* suf, Acc<T>* tot, int64_t n, int64_t C) {
  AFT_SHARED(Acc<T>, seg, kScanSegments * 32);
  const int x = threadIdx.x, sgi = threadIdx.y;
  const int64_t o = blockIdx.x, c = static_cast<int64_t>(blockIdx.y) * 32 + x;
  const bool ok = c < C;
  const int64_t i0 = sgi * n / kScanSegments, i1 = (sgi + 1) * n / kScanSegments;
  const Acc<T>* So = S + o * n * C + c;
  Acc<T> total = Acc<T>::empty();
  if (ok)
    for (int64_t i = i0; i < i1; ++i) total.merge(So[i * C]);
  seg[sgi * 32 + x] = total;
  __syncthreads();
  if (!ok) return;
  const int64_t po = o * (n + 1) * C + c;
  if (pre) {
    Acc<T> run = Acc<T>::empty();
    for (int s = 0; s < sgi; ++s) run.merge(seg[s * 32 + x]);
    for (int64_t i = i0; i < i1; ++i) {
      pre[po + i * C] = run;
      run.merge(So[i * C]);
    }
    if (sgi == kScanSegments - 1) pre[po + n * C] = run;
  }
  if (suf) {
    Acc<T> run = Acc<T>::empty();
    for (int s = kScanSegments - 1; s > sgi; --s) run.merge(seg[s * 32 + x]);
    for (int64_t i = i1 - 1; i >= i0; --i) {
      run.merge(So[i * C]);
      suf[po + i * C] = run;
    }
    if (sgi == kScanSegments - 1) suf[po + n * C] = Acc<T>::empty();
  }
  if (tot && sgi == 0) {
    Acc<T> run = Acc<T>::empty();
    for (int s = 0; s < kScanSegments; ++s) run.merge(seg[s * 32 + x]);
    tot[o * C + c] = run;
  }
}

template <class T, class Term>
inline void launch_chunk_summary(const Term& term, Acc<T>* S, int64_t B, int64_t T_, int64_t D) {
  const int64_t per = (row_chunks(T_) + 7) / 8;
  AFT_LAUNCH((chunk_summary_kernel<T, Term>), dim3(static_cast<unsigned>(B * per), blocks_for(D, 32)), dim3(32, 8), 0,
             term, S, B, T_, D);
}

template <class T>
inline void launch_chunk_scan(const Acc<T>* S, Acc<T>* pre, Acc<T>* suf, Acc<T>* tot, int64_t outer, int64_t n,
                              int64_t C) {
  AFT_LAUNCH(chunk_scan_kernel<T>, dim3(static_cast<unsigned>(outer), blocks_for(C, 32)), dim3(32, kScanSegments), 0,
             S, pre, suf, tot, n, C);
}

// Entry ci (a chunk boundary, 0..nch) of batch b, channel d, in a [B, nch + 1, D] prefix/suffix
// array written by launch_chunk_scan.
template <class T>
__device__ __forceinline__ const Acc<T>& chunk_sum(const Acc<T>* S, int64_t b, int64_t nch, int64_t ci, int64_t D,
                                                   int64_t d) {
  return S[(b * (nch + 1) + ci) * D + d];
}

}  // namespace aft::cuda::aftk
