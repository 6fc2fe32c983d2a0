// cuda/aft_simple.cu: AFT-simple on the GPU (w = 0), forward and backward, with the formulas of
// ops/aft_simple.cpp. q, k, v, y [B, T, D]; per batch b and channel d:
//
//   non-causal: y[t] = sigmoid(q[t]) · r,     r    = Σ_t' e^{k[t']} v[t'] / Σ_t' e^{k[t']}
//   causal:     y[t] = sigmoid(q[t]) · r[t],  r[t] = Σ_{t'<=t} e^{k[t']} v[t'] / Σ_{t'<=t} e^{k[t']}
//
// Both are memory-bound (a few flops and one or two exps per element read), so the kernels are
// built to read each input about once and to keep every thread busy for any B·D:
//   non-causal: a fused column softmax-weighted reduction. Rows are split into P parts (P <= 64,
//     a function of T only); a block (32 channels × 8 row lanes) sums e^{k}·(v, 1) of its part
//     with the stable running sum (thread (c, l) takes rows l, l + 8, ...: a warp reads 32
//     neighbouring channels of a row, coalesced), the 8 lanes are merged in order through shared
//     memory. A second kernel merges the P partial sums of its channel (in order), divides, and
//     writes y = sigmoid(q)·r for its part's rows (gate and division fused).
//   causal: a parallel chunked scan with a running maximum (cuda/aft_common.cuh): chunk sums of
//     32 rows, a scan over the chunks, then one thread per (b, chunk, d) walks its 32 rows from
//     the chunk's exclusive prefix, writing y, L, r. No thread walks more than T/256 + 32 steps.
// Backward (gr = g·sigmoid(q), recomputed where it is needed: cheaper than storing it):
//   non-causal: S = Σ_t gr (P partial sums, merged in order); per element
//     dv = e^{k - L}·S,  dk = e^{k - L}·S·(v - r),  dq = g·r·sigmoid'(q)       (one kernel)
//   causal: the mirror scan over targets t >= t' of e^{-L}·(gr, gr·r); per key
//     dv = e^{k + F.m} F.a, dk = e^{k + F.m}(v F.a - F.b)  (aftk::far_grad), fused with dq.
// Every sum is in a fixed order: results depend only on the shapes.
#include "cuda/aft.h"
#include "cuda/aft_common.cuh"

namespace aft::cuda {

namespace {

using aftk::Acc;

constexpr int kLanes = 8;  // row lanes of a column-reduction block

// Parts of the column reductions: about 256 rows each, at most 64 (merged by every thread).
int64_t simple_parts(int64_t T_) {
  const int64_t p = (T_ + 255) / 256;
  return p < 1 ? 1 : p > 64 ? 64 : p;
}

// ---- non-causal

// part[b, p, d] = Acc over the rows of part p of e^{k}·(v, 1).
// grid (B·P, ceil(D / 32)), block (32, 8).
template <class T>
__global__ void simple_part_kernel(const T* k, const T* v, Acc<T>* part, int64_t T_, int64_t D, int64_t P) {
  AFT_SHARED(Acc<T>, red, kLanes * 32);
  const int x = threadIdx.x, l = threadIdx.y;
  const int64_t b = blockIdx.x / P, p = blockIdx.x % P, d = static_cast<int64_t>(blockIdx.y) * 32 + x;
  const int64_t rpp = (T_ + P - 1) / P, t1 = (p + 1) * rpp < T_ ? (p + 1) * rpp : T_;
  Acc<T> acc = Acc<T>::empty();
  if (d < D)
    for (int64_t t = p * rpp + l; t < t1; t += kLanes) {
      const int64_t e = (b * T_ + t) * D + d;
      acc.push(k[e], v[e], T(1));
    }
  red[l * 32 + x] = acc;
  __syncthreads();
  if (l != 0 || d >= D) return;
  for (int i = 1; i < kLanes; ++i) acc.merge(red[i * 32 + x]);
  part[(b * P + p) * D + d] = acc;
}

// Merges the P parts (in order): r = a/b, L = m + log b ([B, 1, D], written by part 0), and
// y = sigmoid(q)·r for the rows of this block's part. Same grid as simple_part_kernel.
template <class T>
__global__ void simple_finish_kernel(const T* q, const Acc<T>* part, T* y, T* L, T* r, int64_t T_, int64_t D,
                                     int64_t P) {
  const int x = threadIdx.x, l = threadIdx.y;
  const int64_t b = blockIdx.x / P, p = blockIdx.x % P, d = static_cast<int64_t>(blockIdx.y) * 32 + x;
  if (d >= D) return;
  Acc<T> acc = Acc<T>::empty();
  for (int64_t i = 0; i < P; ++i) acc.merge(part[(b * P + i) * D + d]);
  const T rr = acc.a / acc.b;
  if (p == 0 && l == 0) {
    r[b * D + d] = rr;
    L[b * D + d] = acc.m + std::log(acc.b);
  }
  const int64_t rpp = (T_ + P - 1) / P, t1 = (p + 1) * rpp < T_ ? (p + 1) * rpp : T_;
  for (int64_t t = p * rpp + l; t < t1; t += kLanes) {
    const int64_t e = (b * T_ + t) * D + d;
    T s, sd;
    aftk::sigmoid2(q[e], s, sd);
    y[e] = s * rr;
  }
}

// gsum[b, p, d] = Σ over the rows of part p of gr = g·sigmoid(q) (lanes added in order).
template <class T>
__global__ void simple_gsum_kernel(const T* q, const T* g, T* gsum, int64_t T_, int64_t D, int64_t P) {
  AFT_SHARED(T, red, kLanes * 32);
  const int x = threadIdx.x, l = threadIdx.y;
  const int64_t b = blockIdx.x / P, p = blockIdx.x % P, d = static_cast<int64_t>(blockIdx.y) * 32 + x;
  const int64_t rpp = (T_ + P - 1) / P, t1 = (p + 1) * rpp < T_ ? (p + 1) * rpp : T_;
  T acc = 0;
  if (d < D)
    for (int64_t t = p * rpp + l; t < t1; t += kLanes) {
      const int64_t e = (b * T_ + t) * D + d;
      T s, sd;
      aftk::sigmoid2(q[e], s, sd);
      acc += g[e] * s;
    }
  red[l * 32 + x] = acc;
  __syncthreads();
  if (l != 0 || d >= D) return;
  for (int i = 1; i < kLanes; ++i) acc += red[i * 32 + x];
  gsum[(b * P + p) * D + d] = acc;
}

// Per element of part p: S = Σ_p gsum (in order), a = e^{k - L},
//   dv = a·S,  dk = a·S·(v - r),  dq = g·r·sigmoid'(q)      (dq, dk, dv may be null; dk with dv)
template <class T>
__global__ void simple_backward_kernel(const T* q, const T* g, const T* k, const T* v, const T* L, const T* r,
                                       const T* gsum, T* dq, T* dk, T* dv, int64_t T_, int64_t D, int64_t P) {
  const int x = threadIdx.x, l = threadIdx.y;
  const int64_t b = blockIdx.x / P, p = blockIdx.x % P, d = static_cast<int64_t>(blockIdx.y) * 32 + x;
  if (d >= D) return;
  const T rr = r[b * D + d];
  T S = 0, Lc = 0;
  if (dk) {
    for (int64_t i = 0; i < P; ++i) S += gsum[(b * P + i) * D + d];
    Lc = L[b * D + d];
  }
  const int64_t rpp = (T_ + P - 1) / P, t1 = (p + 1) * rpp < T_ ? (p + 1) * rpp : T_;
  for (int64_t t = p * rpp + l; t < t1; t += kLanes) {
    const int64_t e = (b * T_ + t) * D + d;
    if (dq) {
      T s, sd;
      aftk::sigmoid2(q[e], s, sd);
      dq[e] = g[e] * rr * sd;
    }
    if (dk) {
      const T aS = std::exp(k[e] - Lc) * S;
      dv[e] = aS;
      dk[e] = aS * (v[e] - rr);
    }
  }
}

// ---- causal

// One thread per (b, chunk, d): from the exclusive prefix of its chunk, push each row's key and
// write y, L, r. grid (B · ceil(nch / 8), ceil(D / 32)), block (32, 8).
template <class T>
__global__ void simple_causal_forward_kernel(const T* q, const T* k, const T* v, const Acc<T>* pre, T* y, T* L, T* r,
                                             int64_t T_, int64_t D) {
  const int64_t nch = aftk::row_chunks(T_), per = (nch + 7) / 8;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * 32 + threadIdx.x;
  const int64_t b = blockIdx.x / per, c = (blockIdx.x % per) * 8 + threadIdx.y;
  if (d >= D || c >= nch) return;
  Acc<T> acc = aftk::chunk_sum(pre, b, nch, c, D, d);
  const int64_t t1 = (c + 1) * aftk::kChunk < T_ ? (c + 1) * aftk::kChunk : T_;
  for (int64_t t = c * aftk::kChunk; t < t1; ++t) {
    const int64_t e = (b * T_ + t) * D + d;
    acc.push(k[e], v[e], T(1));
    aftk::finish_row(acc, q[e], &y[e], &L[e], &r[e]);
  }
}

// One thread per (b, chunk, d): from the exclusive suffix after its chunk (targets t >= the next
// chunk), walk the rows down: push target t, then key t gets far_grad. dq fused.
template <class T>
__global__ void simple_causal_backward_kernel(const T* q, const T* g, const T* k, const T* v, const T* L,
                                              const T* r, const Acc<T>* suf, T* dq, T* dk, T* dv, int64_t T_,
                                              int64_t D) {
  const int64_t nch = aftk::row_chunks(T_), per = (nch + 7) / 8;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * 32 + threadIdx.x;
  const int64_t b = blockIdx.x / per, c = (blockIdx.x % per) * 8 + threadIdx.y;
  if (d >= D || c >= nch) return;
  Acc<T> F = dk ? aftk::chunk_sum(suf, b, nch, c + 1, D, d) : Acc<T>::empty();
  const int64_t t1 = (c + 1) * aftk::kChunk < T_ ? (c + 1) * aftk::kChunk : T_;
  for (int64_t t = t1 - 1; t >= c * aftk::kChunk; --t) {
    const int64_t e = (b * T_ + t) * D + d;
    T s, sd;
    aftk::sigmoid2(q[e], s, sd);
    if (dq) dq[e] = g[e] * r[e] * sd;
    if (!dk) continue;
    const T gr = g[e] * s;
    F.push(-L[e], gr, gr * r[e]);
    T dvv = 0, dkv = 0;
    aftk::far_grad(k[e], v[e], F, dvv, dkv);
    dv[e] = dvv;
    dk[e] = dkv;
  }
}

dim3 part_grid(int64_t B, int64_t P, int64_t D) { return dim3(static_cast<unsigned>(B * P), blocks_for(D, 32)); }
dim3 chunk_grid(int64_t B, int64_t T_, int64_t D) {
  return dim3(static_cast<unsigned>(B * ((aftk::row_chunks(T_) + 7) / 8)), blocks_for(D, 32));
}

}  // namespace

// Elements (of the tensors' dtype) of the work buffer aft_simple_forward / _backward need.
int64_t aft_simple_work_elems(int64_t B, int64_t T, int64_t D, bool causal) {
  if (!causal) return 3 * B * simple_parts(T) * D;
  const int64_t nch = aftk::row_chunks(T);
  return 3 * (B * nch * D + B * (nch + 1) * D);
}

// q, k, v, y contiguous [B, T, D]; L, r [B, T, D] (causal) or [B, 1, D].
void aft_simple_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& y,
                        const TensorDesc& L, const TensorDesc& r, const TensorDesc& work, bool causal) {
  const int64_t B = q.shape[0], T_ = q.shape[1], D = q.shape[2];
  if (B * D == 0) return;
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    if (!causal) {
      if (T_ == 0) return;  // (the CPU leaves r and L of an empty sequence undefined too)
      const int64_t P = simple_parts(T_);
      Acc<T>* part = reinterpret_cast<Acc<T>*>(work.ptr<T>());
      AFT_LAUNCH(simple_part_kernel<T>, part_grid(B, P, D), dim3(32, kLanes), 0, k.ptr<const T>(), v.ptr<const T>(),
                 part, T_, D, P);
      AFT_LAUNCH(simple_finish_kernel<T>, part_grid(B, P, D), dim3(32, kLanes), 0, q.ptr<const T>(),
                 static_cast<const Acc<T>*>(part), y.ptr<T>(), L.ptr<T>(), r.ptr<T>(), T_, D, P);
      return;
    }
    if (T_ == 0) return;
    const int64_t nch = aftk::row_chunks(T_);
    Acc<T>* S = reinterpret_cast<Acc<T>*>(work.ptr<T>());
    Acc<T>* pre = S + B * nch * D;
    aftk::launch_chunk_summary<T>(aftk::KeyTerm<T>{k.ptr<const T>(), v.ptr<const T>()}, S, B, T_, D);
    aftk::launch_chunk_scan<T>(S, pre, nullptr, nullptr, B, nch, D);
    AFT_LAUNCH(simple_causal_forward_kernel<T>, chunk_grid(B, T_, D), dim3(32, 8), 0, q.ptr<const T>(),
               k.ptr<const T>(), v.ptr<const T>(), static_cast<const Acc<T>*>(pre), y.ptr<T>(), L.ptr<T>(),
               r.ptr<T>(), T_, D);
  });
}

// g the upstream gradient; dq, dk, dv may be absent (dk and dv come together).
void aft_simple_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                         const TensorDesc& L, const TensorDesc& r, const TensorDesc& work, const TensorDesc& dq,
                         const TensorDesc& dk, const TensorDesc& dv, bool causal) {
  const int64_t B = q.shape[0], T_ = q.shape[1], D = q.shape[2];
  if (B * T_ * D == 0) return;
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    if (!causal) {
      const int64_t P = simple_parts(T_);
      T* gsum = work.ptr<T>();
      if (dk.data)
        AFT_LAUNCH(simple_gsum_kernel<T>, part_grid(B, P, D), dim3(32, kLanes), 0, q.ptr<const T>(), g.ptr<const T>(),
                   gsum, T_, D, P);
      AFT_LAUNCH(simple_backward_kernel<T>, part_grid(B, P, D), dim3(32, kLanes), 0, q.ptr<const T>(),
                 g.ptr<const T>(), k.ptr<const T>(), v.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
                 static_cast<const T*>(gsum), dq.ptr<T>(), dk.ptr<T>(), dv.ptr<T>(), T_, D, P);
      return;
    }
    const int64_t nch = aftk::row_chunks(T_);
    Acc<T>* S = reinterpret_cast<Acc<T>*>(work.ptr<T>());
    Acc<T>* suf = S + B * nch * D;
    if (dk.data) {
      aftk::launch_chunk_summary<T>(
          aftk::TargetTerm<T>{L.ptr<const T>(), r.ptr<const T>(), g.ptr<const T>(), q.ptr<const T>()}, S, B, T_, D);
      aftk::launch_chunk_scan<T>(S, nullptr, suf, nullptr, B, nch, D);
    }
    AFT_LAUNCH(simple_causal_backward_kernel<T>, chunk_grid(B, T_, D), dim3(32, 8), 0, q.ptr<const T>(),
               g.ptr<const T>(), k.ptr<const T>(), v.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
               static_cast<const Acc<T>*>(suf), dq.ptr<T>(), dk.ptr<T>(), dv.ptr<T>(), T_, D);
  });
}

}  // namespace aft::cuda
