// cuda/aft_common.cuh: what the AFT kernels (cuda/aft_full.cu, aft_local.cu, aft_simple.cu,
// aft_conv.cu) share: the stable running sum Acc (the GPU twin of aftk::Acc in
// ops/aft_common.h), the gate, the chunked scans that give every variant its prefix/suffix
// sums in parallel, and the declarations of the tiled kernels' launchers (cuda/aft_full.cu)
// that aft_local.cu reuses. docs/aft.md explains the math; the notation is that of
// ops/aft_common.h: s = k + w (exponent of a key seen from a row), L = log-sum-exp of the row,
// r = the normalised sum, y = sigmoid(q)·r, gr = g·sigmoid(q).
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

#include "cuda/kernel_common.h"

namespace aft::cuda::aftk {

// ---------------------------------------------------------------- the stable running sum

// Two sums of exponentials held as a scale and two mantissas: A = a·e^m, B = b·e^m, m the
// largest exponent pushed so far (kEmpty: nothing pushed; finite on purpose, so that
// kEmpty - kEmpty = 0 and e^{s - kEmpty} = inf, e^{kEmpty - s} = 0, with no inf - inf).
// Pushing e^s·(x, y):  e = exp(-|s - m|);  s > m: a = a·e + x, b = b·e + y, m = s
//                                           else:  a = a + x·e, b = b + y·e
// One exp per term; in the forward (y = 1) b >= 1 always. A merge is a push of (m', a', b').
template <class T>
struct Acc {
  T m, a, b;
};

template <class T>
__host__ __device__ constexpr T empty_exponent() {
  return static_cast<T>(-1e30);
}

template <class T>
__device__ __forceinline__ Acc<T> acc_empty() {
  return {empty_exponent<T>(), T(0), T(0)};
}

template <class T>
__device__ __forceinline__ void acc_push(Acc<T>& s, T e_s, T x, T y) {
  const T e = std::exp(-std::fabs(e_s - s.m));
  if (e_s > s.m) {
    s.a = s.a * e + x;
    s.b = s.b * e + y;
    s.m = e_s;
  } else {
    s.a += x * e;
    s.b += y * e;
  }
}

template <class T>
__device__ __forceinline__ void acc_merge(Acc<T>& s, const Acc<T>& o) {
  acc_push(s, o.m, o.a, o.b);
}

// ---------------------------------------------------------------- the gate

// s = sigmoid(q), sd = sigmoid(q)·sigmoid(-q) = sigmoid'(q), from one e = e^{-|q|}:
// sigmoid(|q|) = 1/(1+e), sigmoid(-|q|) = e/(1+e). No overflow, no 1 - sigmoid cancellation.
template <class T>
__device__ __forceinline__ void sigmoid2(T q, T& s, T& sd) {
  const T e = std::exp(-std::fabs(q));
  const T inv = T(1) / (T(1) + e);
  s = q >= T(0) ? inv : e * inv;
  sd = e * inv * inv;
}

// The forward epilogue of one (row, channel): r = a/b, L = m + log b, y = sigmoid(q)·r.
template <class T>
__device__ __forceinline__ void finish_row(const Acc<T>& acc, T q, T* y, T* L, T* r) {
  const T rr = acc.a / acc.b;
  T s, sd;
  sigmoid2(q, s, sd);
  *y = s * rr;
  *r = rr;
  *L = acc.m + std::log(acc.b);
}

// A key gets from the targets that see it with bias 0 (the "far" targets of aft_local and
// aft_conv, all targets of causal aft_simple), given their running sum F over targets
// (exponent -L, a = Σ gr, b = Σ gr·r):
//   dv += e^{k + F.m} F.a,   dk += e^{k + F.m} (v F.a - F.b)
// k + F.m <= 0 (L[t] >= k for every target that sums this key), so the factor never overflows.
template <class T>
__device__ __forceinline__ void far_grad(T k, T v, const Acc<T>& F, T& dv, T& dk) {
  const T f = std::exp(k + F.m);
  dv += f * F.a;
  dk += f * (v * F.a - F.b);
}

// Backward of the gate, elementwise over n values of [B, T, D]:
//   gr = g·sigmoid(q) (the gradient reaching r),   dq = g·r·sigmoid'(q)
// Either output may be null.
template <class T>
__global__ void gate_backward_kernel(const T* q, const T* g, const T* r, T* gr, T* dq, int64_t n) {
  AFT_KERNEL_LOOP(i, n) {
    T s, sd;
    sigmoid2(q[i], s, sd);
    if (gr) gr[i] = g[i] * s;
    if (dq) dq[i] = g[i] * r[i] * sd;
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

__host__ __device__ inline int64_t num_chunks(int64_t T_) { return (T_ + kChunk - 1) / kChunk; }
// Index of the chunk boundary at or below t (t a multiple of kChunk, or T itself -> n).
__host__ __device__ inline int64_t chunk_index(int64_t t, int64_t T_) { return t >= T_ ? num_chunks(T_) : t / kChunk; }

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
  const int64_t nch = num_chunks(T_), per = (nch + 7) / 8;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * 32 + threadIdx.x;
  const int64_t b = blockIdx.x / per, c = (blockIdx.x % per) * 8 + threadIdx.y;
  if (d >= D || c >= nch) return;
  Acc<T> acc = acc_empty<T>();
  const int64_t t1 = c * kChunk + kChunk < T_ ? c * kChunk + kChunk : T_;
  for (int64_t t = c * kChunk; t < t1; ++t) {
    T s, x, y;
    term((b * T_ + t) * D + d, s, x, y);
    acc_push(acc, s, x, y);
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
  Acc<T> total = acc_empty<T>();
  if (ok)
    for (int64_t i = i0; i < i1; ++i) acc_merge(total, So[i * C]);
  seg[sgi * 32 + x] = total;
  __syncthreads();
  if (!ok) return;
  const int64_t po = o * (n + 1) * C + c;
  if (pre) {
    Acc<T> run = acc_empty<T>();
    for (int s = 0; s < sgi; ++s) acc_merge(run, seg[s * 32 + x]);
    for (int64_t i = i0; i < i1; ++i) {
      pre[po + i * C] = run;
      acc_merge(run, So[i * C]);
    }
    if (sgi == kScanSegments - 1) pre[po + n * C] = run;
  }
  if (suf) {
    Acc<T> run = acc_empty<T>();
    for (int s = kScanSegments - 1; s > sgi; --s) acc_merge(run, seg[s * 32 + x]);
    for (int64_t i = i1 - 1; i >= i0; --i) {
      acc_merge(run, So[i * C]);
      suf[po + i * C] = run;
    }
    if (sgi == kScanSegments - 1) suf[po + n * C] = acc_empty<T>();
  }
  if (tot && sgi == 0) {
    Acc<T> run = acc_empty<T>();
    for (int s = 0; s < kScanSegments; ++s) acc_merge(run, seg[s * 32 + x]);
    tot[o * C + c] = run;
  }
}

template <class T, class Term>
inline void launch_chunk_summary(const Term& term, Acc<T>* S, int64_t B, int64_t T_, int64_t D) {
  const int64_t per = (num_chunks(T_) + 7) / 8;
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

// ---------------------------------------------------------------- the tiled kernels (aft_full.cu)
//
// aft_full and aft_local share one set of tiled kernels: AFT-local is AFT-full whose bias is 0
// outside the band, restricted to the key tiles near the band, plus the far keys' prefix and
// suffix sums (chunk-scan results at a 32-row boundary). The bias is described by this plain
// struct; the far sums by pointers that are null for aft_full.
template <class T>
struct BiasSpec {
  const T* w = nullptr;  // full: [T, T]; band: [T, nb]
  int64_t n = 0;         // T, the sequence length
  int64_t W = 0;         // band: the window; 0: full
  int64_t nb = 0;        // band columns (2W - 1, or W when causal)
  bool causal = false;
  __host__ __device__ bool band() const { return W > 0; }
};

// Forward: y, L, r [B, T, D]. pre/suf (band only): key-chunk prefix / suffix sums of e^k·(v, 1),
// [B, nch + 1, D] (suf null when causal).
template <class T>
void tiles_forward(const T* q, const T* k, const T* v, const BiasSpec<T>& bias, const Acc<T>* pre,
                   const Acc<T>* suf, T* y, T* L, T* r, int64_t B, int64_t D);
// Backward of k and v given gr [B, T, D]: dk, dv. pre/suf (band only): target-chunk sums of
// e^{-L}·(gr, gr·r) (pre null when causal).
template <class T>
void tiles_backward_kv(const T* k, const T* v, const T* L, const T* r, const T* gr, const BiasSpec<T>& bias,
                       const Acc<T>* pre, const Acc<T>* suf, T* dk, T* dv, int64_t B, int64_t D);
// dw (full [T, T], or the band [T, nb], zero-filled by the caller: cells whose key is outside
// [0, T) are not written).
template <class T>
void tiles_backward_w(const T* k, const T* v, const T* L, const T* r, const T* gr, const BiasSpec<T>& bias,
                      T* dw, int64_t B, int64_t D);

}  // namespace aft::cuda::aftk
