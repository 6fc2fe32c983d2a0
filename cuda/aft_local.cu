// cuda/aft_local.cu: AFT-local on the GPU, forward and backward, with the formulas and the stable
// form of ops/aft_local.cpp. q, k, v, y [B, T, D]; w_band [T, 2W - 1] (causal [T, W]), column
// j = t' - t + W - 1; outside the band |t - t'| < W the bias is 0 (not -inf).
//
//   y[t] = sigmoid(q[t]) · Σ_t' e^{k[t'] + w'[t,t']} v[t'] / Σ_t' e^{k[t'] + w'[t,t']}
//
// The keys of a row split into prefix (t' <= t - W), band and suffix (t' >= t + W), added as
// stable running sums; nothing is subtracted (the textbook "global sum + (e^w - 1) band
// correction" cancels catastrophically when a band key dominates and its w is very negative).
// On the GPU, per tile of 64 rows (the tiled engine of cuda/aft_tiles.cu, which takes a band
// bias):
//   - the keys near the band, [t0 - W + 1, t1 + W - 1) widened to 32-key boundaries, are summed
//     directly as in AFT-full, with w' = the band cell inside the band and 0 outside it; the
//     band tile of w is staged in shared memory per 64 × 64 (row, key) tile, and the shift of
//     each (row, key tile, channel) is the certified separable one (e^{w'} per row shared by
//     the 32 channels of the block, e^{k} per key), so a term costs 2 FMA, not an exp;
//   - the keys before and after that range (bias 0) come from the chunked scan of
//     cuda/aft_common.cuh: one exclusive prefix / suffix Acc per 32-key boundary, merged into
//     the row's running sum before the gate and the division (fused in the same kernel).
// Work O(T·(2W + 64 + 64)·D) FMA (the widening costs up to 64 + 64 keys per row beyond the band's
// 2W - 1), O(T·D) exps; memory O(B·T·D / 32) for the chunk sums.
// Backward (gr = g·sigmoid(q), a = e^{k + w' - L} <= 1): the mirror image. dk, dv per key tile:
// targets near the band summed directly (x = gr·a, dv += x, dk += x·(v - r)), far targets
// (bias 0) from the chunk-scan sums of e^{-L}·(gr, gr·r) over targets (aftk::far_grad); dw_band
// by the dw tile kernel over the (row tile, key tile) pairs that meet the band, each band cell
// owned by one thread: no atomics, deterministic.
#include "cuda/aft.h"
#include "cuda/aft_tiles.cuh"

namespace aft::cuda {

namespace {

// The chunk sums of a [B, T, D] problem, laid out in the work buffer: summaries [B, nch, D],
// exclusive prefixes and suffixes [B, nch + 1, D].
template <class T>
struct ChunkSums {
  aftk::Acc<T>*S, *pre, *suf;
  ChunkSums(T* work, int64_t B, int64_t T_, int64_t D) {
    const int64_t nch = aftk::row_chunks(T_);
    S = reinterpret_cast<aftk::Acc<T>*>(work);
    pre = S + B * nch * D;
    suf = pre + B * (nch + 1) * D;
  }
};

}  // namespace

// Elements (of the tensors' dtype) of the work buffer aft_local_forward / _backward need.
int64_t aft_local_work_elems(int64_t B, int64_t T, int64_t D) {
  const int64_t nch = aftk::row_chunks(T);
  return 3 * (B * nch * D + 2 * B * (nch + 1) * D);
}

// q, k, v, y, L, r contiguous [B, T, D]; wb contiguous [T, nb]; work of aft_local_work_elems.
void aft_local_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& wb,
                       const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, const TensorDesc& work,
                       int64_t window, bool causal) {
  const int64_t B = q.shape[0], T_ = q.shape[1], D = q.shape[2];
  if (B * T_ * D == 0) return;
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    aftk::BiasSpec<T> bias{wb.ptr<const T>(), T_, window, wb.shape[1], causal};
    ChunkSums<T> cs(work.ptr<T>(), B, T_, D);
    aftk::launch_chunk_summary<T>(aftk::KeyTerm<T>{k.ptr<const T>(), v.ptr<const T>()}, cs.S, B, T_, D);
    aftk::launch_chunk_scan<T>(cs.S, cs.pre, causal ? nullptr : cs.suf, nullptr, B, aftk::row_chunks(T_), D);
    aftk::tiles_forward<T>(q.ptr<const T>(), k.ptr<const T>(), v.ptr<const T>(), bias, cs.pre,
                           causal ? nullptr : cs.suf, y.ptr<T>(), L.ptr<T>(), r.ptr<T>(), B, D);
  });
}

// g the upstream gradient; gr a [B, T, D] work buffer, work of aft_local_work_elems; dq, dk, dv,
// dw may be absent (dk and dv come together); dw [T, nb] zero-filled by the caller.
void aft_local_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                        const TensorDesc& wb, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                        const TensorDesc& work, const TensorDesc& dq, const TensorDesc& dk, const TensorDesc& dv,
                        const TensorDesc& dw, int64_t window, bool causal) {
  const int64_t B = q.shape[0], T_ = q.shape[1], D = q.shape[2];
  if (B * T_ * D == 0) return;
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    aftk::launch_gate_backward<T>(q.ptr<const T>(), g.ptr<const T>(), r.ptr<const T>(), gr.ptr<T>(), dq.ptr<T>(),
                                  q.numel());
    aftk::BiasSpec<T> bias{wb.ptr<const T>(), T_, window, wb.shape[1], causal};
    if (dk.data) {
      ChunkSums<T> cs(work.ptr<T>(), B, T_, D);
      aftk::launch_chunk_summary<T>(aftk::TargetTerm<T>{L.ptr<const T>(), r.ptr<const T>(), gr.ptr<const T>(), nullptr},
                                    cs.S, B, T_, D);
      aftk::launch_chunk_scan<T>(cs.S, causal ? nullptr : cs.pre, cs.suf, nullptr, B, aftk::row_chunks(T_), D);
      aftk::tiles_backward_kv<T>(k.ptr<const T>(), v.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
                                 gr.ptr<const T>(), bias, causal ? nullptr : cs.pre, cs.suf, dk.ptr<T>(), dv.ptr<T>(),
                                 B, D);
    }
    if (dw.data)
      aftk::tiles_backward_w<T>(k.ptr<const T>(), v.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
                                gr.ptr<const T>(), bias, dw.ptr<T>(), B, D);
  });
}

}  // namespace aft::cuda
