// ops/aft_simple.cpp: AFT-simple, the Attention Free Transformer without position bias (w = 0).
// q, k, v, y are [B, T, D]; per batch b and channel d (notation of ops/aft_common.h):
//
//   non-causal: y[t] = sigmoid(q[t]) · r,     r    = Σ_t' e^{k[t']} v[t'] / Σ_t' e^{k[t']}
//   causal:     y[t] = sigmoid(q[t]) · r[t],  r[t] = Σ_{t'<=t} e^{k[t']} v[t'] / Σ_{t'<=t}
//   e^{k[t']}
//
// Non-causal, r is one softmax over t of k per channel: the same context vector for every row,
// O(T·D). Causal, r[t] is a running (prefix) weighted mean: one stable running sum (Acc,
// ops/aft_common.h) per channel walks t = 0..T-1, rescaling when a larger k appears, O(T·D).
//
// Saved for backward: q, k, v and, per row and channel, L = log-sum-exp of the keys summed so far
// and r (non-causal: L and r are [B, 1, D], one per channel). Nothing T×T exists.
//
// Backward (gr = g·sigmoid(q), a[t, t'] = e^{k[t'] - L[t]}):
//   non-causal: S = Σ_t gr[t];  dv[t'] = a[t'] S;  dk[t'] = a[t'] S (v[t'] - r)
//   causal:     dv[t'] = Σ_{t>=t'} gr[t] a[t, t'],   dk[t'] = Σ_{t>=t'} gr[t] a[t, t'] (v[t'] -
//   r[t])
//               = e^{k[t']} (v[t'] A - C), with A = Σ_{t>=t'} gr e^{-L}, C = Σ_{t>=t'} gr r e^{-L}
//   computed by a second Acc walking t = T-1..0 with exponent -L[t] (aftk::far_grad).
// dq = g · r · sigmoid'(q) (aftk::gate_backward).
//
// Work split: one task per (batch, group of 2 chunks of 8 floats / 4 doubles = one 64-byte
// cache line of channels); each task walks t alone, so there is no reduction across threads.
// CUDA tensors run cuda/aft_simple.cu (a fused column reduction; causal: a chunked parallel scan).
#include "autograd/tape.h"
#include "cuda/aft.h"
#include "ops/aft_common.h"
#include "ops/ops.h"

namespace aft {

namespace {

using namespace aftk;

constexpr int64_t kGroup = 2;  // chunks per task

// Calls fn(b, chunk) for every (batch, chunk), in parallel over (batch, chunk group).
template <class T, class F>
void for_chunks(const Dims& s, F fn) {
  const int64_t nc = lane_chunks(s.D, Simd<T>::W), ng = (nc + kGroup - 1) / kGroup;
  parallel_for(0, s.B * ng, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b = i / ng, g = i % ng;
      for (int64_t c = g * kGroup; c < std::min(nc, (g + 1) * kGroup); ++c) fn(b, c);
    }
  });
}

// Forward. y [B, T, D]; L, r [B, 1, D] (non-causal) or [B, T, D] (causal).
template <class T>
void simple_forward(const T* q, const T* k, const T* v, T* y, T* L, T* r, const Dims& s,
                    bool causal) {
  constexpr int W = Simd<T>::W;
  using V = Vec<T>;
  const int64_t T_ = s.T, D = s.D;
  for_chunks<T>(s, [&](int64_t b, int64_t c) {
    const int n = lanes(D, c, W);
    const int64_t base = b * T_ * D + c * W;  // element (b, 0, c·W)
    const V one = splat<T>(1);
    V sg, sd;
    if (!causal) {
      // Two passes: the exact max of k over t, then one exp per element.
      V m = splat<T>(static_cast<T>(kEmpty));
      for (int64_t t = 0; t < T_; ++t) m = vmax(m, load(k + base + t * D, n));
      V A{}, Bs{};
      for (int64_t t = 0; t < T_; ++t) {
        V e = vexp(load(k + base + t * D, n) - m);
        A += e * load(v + base + t * D, n);
        Bs += e;
      }
      V rr = A / (Bs + (T_ == 0 ? one : V{}));  // T = 0: no row reads r
      store(r + b * D + c * W, rr, n);
      store(L + b * D + c * W, m + vlog(Bs), n);
      for (int64_t t = 0; t < T_; ++t) {
        aft_math::sigmoid2<VecMath<T>>(load(q + base + t * D, n), sg, sd);
        store(y + base + t * D, sg * rr, n);
      }
      return;
    }
    // Causal: the running sum over t' <= t.
    Acc<T> acc = Acc<T>::empty();
    for (int64_t t = 0; t < T_; ++t) {
      const int64_t o = base + t * D;
      acc.push(load(k + o, n), load(v + o, n), one);
      store_row(acc, q, y, L, r, o, n);
    }
  });
}

// Backward of k and v, given gr = g·sigmoid(q) [B, T, D].
template <class T>
void simple_backward(const T* k, const T* v, const T* L, const T* r, const T* gr, T* dk, T* dv,
                     const Dims& s, bool causal) {
  constexpr int W = Simd<T>::W;
  using V = Vec<T>;
  const int64_t T_ = s.T, D = s.D;
  for_chunks<T>(s, [&](int64_t b, int64_t c) {
    const int n = lanes(D, c, W);
    const int64_t base = b * T_ * D + c * W;
    if (!causal) {
      const V Lc = load(L + b * D + c * W, n), rc = load(r + b * D + c * W, n);
      V S{};
      for (int64_t t = 0; t < T_; ++t) S += load(gr + base + t * D, n);
      for (int64_t t = 0; t < T_; ++t) {
        const int64_t o = base + t * D;
        V aS = vexp(load(k + o, n) - Lc) * S;
        store(dv + o, aS, n);
        store(dk + o, aS * (load(v + o, n) - rc), n);
      }
      return;
    }
    // Causal: targets t >= t' sum key t'; walk t' downwards with the running sum of those.
    Acc<T> F = Acc<T>::empty();
    for (int64_t t = T_ - 1; t >= 0; --t) {
      const int64_t o = base + t * D;
      V g = load(gr + o, n);
      F.push(-load(L + o, n), g, g * load(r + o, n));
      V dvv{}, dkv{};
      far_grad(load(k + o, n), load(v + o, n), F, dvv, dkv);
      store(dv + o, dvv, n);
      store(dk + o, dkv, n);
    }
  });
}

}  // namespace

Tensor aft_simple(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const char* op = "aft_simple";
  const Dims s = check_qkv(op, q, k, v);
  Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(), vc = v.detach().contiguous();
  const Shape stat_shape = causal ? q.shape() : Shape{s.B, 1, s.D};
  const TensorOptions opts(q.dtype(), q.device());
  Tensor y = empty(q.shape(), opts);
  Tensor L = empty(stat_shape, opts), r = empty(stat_shape, opts);
  if (q.is_cuda()) {
    AFT_CUDA_CALL([&] {
      Tensor work = empty({cuda::aft_simple_work_elems(s.B, s.T, s.D, causal)}, opts);  // partial sums
      cuda::aft_simple_forward(desc(qc), desc(kc), desc(vc), desc(y), desc(L), desc(r), desc(work), causal);
    }());
  } else {
    dispatch_float(q.dtype(), op, [&]<class T>() {
      simple_forward<T>(qc.data<T>(), kc.data<T>(), vc.data<T>(), y.data<T>(), L.data<T>(),
                        r.data<T>(), s, causal);
    });
  }
  record_aft(op, q, k, v, nullptr, {qc, kc, vc, Tensor(), L, r}, y,
             [=](const AftSaved& sv, const Tensor& g, AftWants want) {
    const TensorOptions o(sv.q.dtype(), sv.q.device());
    AftGrads d{.dq = empty(sv.q.shape(), o)};
    if (want.kv) d.dk = empty(sv.q.shape(), o), d.dv = empty(sv.q.shape(), o);
    if (sv.q.is_cuda()) {
      AFT_CUDA_CALL([&] {
        Tensor work;  // partial sums
        if (want.kv) work = empty({cuda::aft_simple_work_elems(s.B, s.T, s.D, causal)}, o);
        cuda::aft_simple_backward(desc(sv.q), desc(g), desc_or_null(sv.k), desc_or_null(sv.v),
                                  desc_or_null(sv.L), desc(sv.r), desc_or_null(work), desc(d.dq),
                                  desc_or_null(d.dk), desc_or_null(d.dv), causal);
      }());
      return d;
    }
    Tensor gr = empty(sv.q.shape(), o);
    dispatch_float(sv.q.dtype(), op, [&]<class T>() {
      const int64_t TD = s.T * s.D;
      gate_backward<T>(sv.q.data<T>(), g.data<T>(), sv.r.data<T>(), sv.q.numel(), gr.data<T>(),
                       d.dq.data<T>(),
                       [&](int64_t i) { return causal ? i : (i / TD) * s.D + i % s.D; });
      if (!want.kv) return;
      simple_backward<T>(sv.k.data<T>(), sv.v.data<T>(), sv.L.data<T>(), sv.r.data<T>(), gr.data<T>(),
                         d.dk.data<T>(), d.dv.data<T>(), s, causal);
    });
    return d;
  });
  return y;
}

}  // namespace aft
