// ops/aft_local.cpp: AFT-local, the Attention Free Transformer whose learned position bias is
// kept only inside a window; outside it the bias is 0 (not -inf: every key still counts).
// q, k, v, y are [B, T, D]; window = W >= 1. Per batch b and channel d:
//
//   y[t] = sigmoid(q[t]) · Σ_t' e^{k[t'] + w'[t,t']} v[t'] / Σ_t' e^{k[t'] + w'[t,t']}
//   w'[t, t'] = w[t, t'] where |t - t'| < W, else 0;  causal: only t' <= t.
//
// Only the band of w is stored (ops/ops.h): w_band [T, 2W-1], column j = t' - t + W - 1, or
// causal [T, W] with the same j (t' = t - (W-1) + j); cells whose t' falls outside [0, T) are
// never read and get gradient 0.
//
// The stable form used here: split the keys of row t into three disjoint sets,
//   prefix  t' <= t - W          (weight e^{k}, bias 0)
//   band    |t' - t| < W         (weight e^{k + w})
//   suffix  t' >= t + W          (weight e^{k}; absent when causal)
// and add them as stable running sums (aftk::Acc: a scale e^m and two mantissas). The prefix is
// a running sum advanced by one key per row; the suffix sums are one reverse scan stored per row;
// the band is summed exactly: first its max of k + w, then e^{k + w - m}. Nothing is subtracted:
// the textbook form "global sum + band correction with (e^w - 1)" cancels catastrophically when
// a band key dominates the global sum and its w is very negative (e.g. k = 80, w = -80: the
// global sum is e^80, the correction -e^80 + 1). Here every term is e^{(its exponent) - m}
// with m the largest exponent of the row: no overflow, the largest term is 1, no 0/0.
// Cost: forward O(T·(2W-1)·D) exps + O(T·D) scans; memory O(T·D) per task for the suffix.
//
// Saved for backward: q, k, v, w_band, and per (b, t, d) L = log-sum-exp of the row and r = the
// normalised sum (y = sigmoid(q)·r).
//
// Backward (gr = g·sigmoid(q), a[t, t'] = e^{k[t'] + w'[t,t'] - L[t]}), per key t':
//   dv[t'] = Σ_t gr[t] a[t,t'],  dk[t'] = Σ_t gr[t] a[t,t'] (v[t'] - r[t]),
//   dw_band[t, j] = Σ_{b,d} gr[t] a[t,t'] (v[t'] - r[t])  for the band cell of (t, t').
// The targets t that see key t' are the mirror image of the forward: far (bias 0) targets
// t <= t'-W and t >= t'+W (causal: t >= t'+W only) enter through running sums over t with
// exponent -L[t] (aftk::far_grad); band targets are summed exactly, a <= 1 always.
// dw_band sums over batch and channels: each thread slot adds into its own [T, nb] buffer and
// the buffers are added in slot order (deterministic for a given thread count).
//
// Work split: one task per (batch, channel chunk of 8 floats / 4 doubles).
// CUDA tensors run cuda/aft_local.cu (the tiled kernels of cuda/aft_full.cu with a band bias, plus
// chunked prefix/suffix scans for the far keys; docs/aft.md section 7).
#include "autograd/tape.h"
#include "ops/aft_common.h"
#include "ops/ops.h"

namespace aft {

namespace cuda {  // cuda/aft_local.cu: the same math on the GPU
int64_t aft_local_work_elems(int64_t B, int64_t T, int64_t D);
void aft_local_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& wb,
                       const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, const TensorDesc& work,
                       int64_t window, bool causal);
void aft_local_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                        const TensorDesc& wb, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                        const TensorDesc& work, const TensorDesc& dq, const TensorDesc& dk, const TensorDesc& dv,
                        const TensorDesc& dw, int64_t window, bool causal);
}  // namespace cuda

namespace {

using autograd::SavedTensor;
using autograd::TensorList;
using namespace aftk;

struct Band {
  int64_t W = 1;   // window
  int64_t nb = 1;  // band columns: 2W-1, or W when causal
  bool causal = false;
  // Keys of row t inside the band: [lo(t), hi(t)].
  int64_t lo(int64_t t) const { return std::max<int64_t>(0, t - W + 1); }
  int64_t hi(int64_t t, int64_t T) const {
    return std::min<int64_t>(T - 1, causal ? t : t + W - 1);
  }
  int64_t col(int64_t t, int64_t tp) const { return tp - t + W - 1; }
};

// The columns of one chunk packed as one vector per row: the band loops then read consecutive
// 32-byte vectors instead of rows D·sizeof(T) apart (a power-of-two stride that maps every row
// to the same few L1 cache sets).
template <class T>
void pack(const T* x, int64_t T_, int64_t D, int n, std::vector<Vec<T>>& out) {
  out.resize(static_cast<size_t>(T_));
  for (int64_t t = 0; t < T_; ++t) out[t] = load(x + t * D, n);
}

// Forward of one (batch, chunk). Pointers are at element (b, 0, chunk start); D is the row stride.
template <class T>
void local_forward_chunk(const T* q, const T* k, const T* v, const T* wb, T* y, T* L, T* r,
                         int64_t T_, int64_t D, int n, const Band& band, std::vector<Acc<T>>& suf,
                         std::vector<Vec<T>>& kp, std::vector<Vec<T>>& vp) {
  using V = Vec<T>;
  const V one = splat<T>(1);
  pack(k, T_, D, n, kp);
  pack(v, T_, D, n, vp);
  // suf[t] = keys t' >= t (non-causal only), from a reverse scan.
  if (!band.causal) {
    suf.assign(static_cast<size_t>(T_ + 1), Acc<T>::empty());
    for (int64_t t = T_ - 1; t >= 0; --t) {
      suf[t] = suf[t + 1];
      suf[t].push(kp[t], vp[t], one);
    }
  }
  Acc<T> pre = Acc<T>::empty();  // keys t' <= t - W
  for (int64_t t = 0; t < T_; ++t) {
    if (t >= band.W) pre.push(kp[t - band.W], vp[t - band.W], one);
    const Acc<T> far_hi = (!band.causal && t + band.W < T_) ? suf[t + band.W] : Acc<T>::empty();
    const int64_t lo = band.lo(t), hi = band.hi(t, T_);
    const T* wr = wb + t * band.nb + band.col(t, 0);  // wr[t'] = bias of key t'
    // Band, pass 1: m = the largest exponent of the row, k + w in the band or a far sum's scale.
    V m = vmax(pre.m, far_hi.m);
    for (int64_t tp = lo; tp <= hi; ++tp) m = vmax(m, kp[tp] + wr[tp]);
    // Pass 2: every term relative to m.
    V ea = vexp(pre.m - m), eb = vexp(far_hi.m - m);
    V A = pre.a * ea + far_hi.a * eb, Bs = pre.b * ea + far_hi.b * eb;
    for (int64_t tp = lo; tp <= hi; ++tp) {
      V e = vexp(kp[tp] + wr[tp] - m);
      A += e * vp[tp];
      Bs += e;
    }
    V rr = A / Bs, sg, sd;
    vsigmoid(load(q + t * D, n), sg, sd);
    store(y + t * D, sg * rr, n);
    store(r + t * D, rr, n);
    store(L + t * D, m + vlog(Bs), n);
  }
}

// Per-task scratch of the backward: packed columns and the suffix sums.
template <class T>
struct LocalScratch {
  std::vector<Acc<T>> suf;
  std::vector<Vec<T>> k, v, L, r, g;
};

// Backward of one (batch, chunk): dk, dv of the chunk; dw (may be null) gets this chunk's terms.
template <class T>
void local_backward_chunk(const T* k, const T* v, const T* wb, const T* L, const T* r, const T* gr,
                          T* dk, T* dv, T* dw, int64_t T_, int64_t D, int n, const Band& band,
                          LocalScratch<T>& sc) {
  using V = Vec<T>;
  pack(k, T_, D, n, sc.k);
  pack(v, T_, D, n, sc.v);
  pack(L, T_, D, n, sc.L);
  pack(r, T_, D, n, sc.r);
  pack(gr, T_, D, n, sc.g);
  const V *kp = sc.k.data(), *vp = sc.v.data(), *Lp = sc.L.data(), *rp = sc.r.data(),
          *gp = sc.g.data();
  // suf[t] = targets t..T-1 (exponent -L, sums of gr and gr·r).
  std::vector<Acc<T>>& suf = sc.suf;
  suf.assign(static_cast<size_t>(T_ + 1), Acc<T>::empty());
  for (int64_t t = T_ - 1; t >= 0; --t) {
    suf[t] = suf[t + 1];
    suf[t].push(-Lp[t], gp[t], gp[t] * rp[t]);
  }
  Acc<T> pre = Acc<T>::empty();  // targets t <= t' - W (non-causal)
  const auto valid = lane_mask<T>(n);
  for (int64_t tp = 0; tp < T_; ++tp) {
    const V kk = kp[tp], vv = vp[tp];
    V dvv{}, dkv{};
    if (!band.causal && tp >= band.W) {
      const int64_t t = tp - band.W;
      pre.push(-Lp[t], gp[t], gp[t] * rp[t]);
      far_grad(kk, vv, pre, dvv, dkv);
    }
    if (tp + band.W < T_) far_grad(kk, vv, suf[tp + band.W], dvv, dkv);
    // Band targets: t with |t - t'| < W (causal: t >= t'); cell (t, t' - t + W - 1).
    const int64_t lo = band.causal ? tp : std::max<int64_t>(0, tp - band.W + 1);
    const int64_t hi = std::min<int64_t>(T_ - 1, tp + band.W - 1);
    for (int64_t t = lo; t <= hi; ++t) {
      const int64_t cell = t * band.nb + band.col(t, tp);
      V ga = gp[t] * vexp(kk + wb[cell] - Lp[t]);
      V e = ga * (vv - rp[t]);
      dvv += ga;
      dkv += e;
      if (dw) dw[cell] += hsum(valid ? e : V{});  // padding lanes may hold 0·inf
    }
    store(dv + tp * D, dvv, n);
    store(dk + tp * D, dkv, n);
  }
}

template <class T>
void local_forward(const T* q, const T* k, const T* v, const T* wb, T* y, T* L, T* r, const Dims& s,
                   const Band& band) {
  constexpr int W = Simd<T>::W;
  const int64_t nc = num_chunks(s.D, W);
  parallel_for(0, s.B * nc, 1, [&](int64_t i0, int64_t i1) {
    std::vector<Acc<T>> suf;
    std::vector<Vec<T>> kp, vp;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nc, c = i % nc, o = b * s.T * s.D + c * W;
      local_forward_chunk<T>(q + o, k + o, v + o, wb, y + o, L + o, r + o, s.T, s.D,
                             lanes(s.D, c, W), band, suf, kp, vp);
    }
  });
}

// dw_band (may be null) is summed over slots in order.
template <class T>
void local_backward(const T* k, const T* v, const T* wb, const T* L, const T* r, const T* gr, T* dk,
                    T* dv, T* dw, const Dims& s, const Band& band) {
  constexpr int W = Simd<T>::W;
  const int64_t nc = num_chunks(s.D, W), nw = s.T * band.nb;
  const int64_t ntasks = s.B * nc;
  std::vector<std::vector<T>> part(
      static_cast<size_t>(std::min<int64_t>(ntasks, std::max(1, num_threads()))));
  int64_t nslots = parallel_slots(ntasks, [&](int64_t slot, int64_t i0, int64_t i1) {
    LocalScratch<T> sc;
    T* dws = nullptr;
    if (dw) {
      part[slot].assign(static_cast<size_t>(nw), T(0));
      dws = part[slot].data();
    }
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nc, c = i % nc, o = b * s.T * s.D + c * W;
      local_backward_chunk<T>(k + o, v + o, wb, L + o, r + o, gr + o, dk + o, dv + o, dws, s.T, s.D,
                              lanes(s.D, c, W), band, sc);
    }
  });
  if (!dw) return;
  std::fill(dw, dw + nw, T(0));
  for (int64_t sl = 0; sl < nslots; ++sl) {
    const T* p = part[sl].data();
    parallel_for(0, nw, 16384, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) dw[j] += p[j];
    });
  }
}

}  // namespace

Tensor aft_local(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w_band,
                 int64_t window, bool causal) {
  const char* op = "aft_local";
  const Dims s = check_qkv(op, q, k, v);
  AFT_CHECK(window >= 1, "aft_local: window must be >= 1, got {}", window);
  AFT_CHECK(window <= (int64_t{1} << 40), "aft_local: window {} is too large (at most 2^40)", window);
  Band band{window, causal ? window : 2 * window - 1, causal};
  check_bias(op, w_band, q, Shape{s.T, band.nb},
             causal ? "(the causal band [T, window])" : "(the band [T, 2·window - 1])");
  Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(), vc = v.detach().contiguous();
  Tensor wc = w_band.detach().contiguous();
  const TensorOptions opts(q.dtype(), q.device());
  Tensor y = empty(q.shape(), opts), L = empty(q.shape(), opts), r = empty(q.shape(), opts);
  if (q.is_cuda()) {
    AFT_CUDA_CALL([&] {
      Tensor work = empty({cuda::aft_local_work_elems(s.B, s.T, s.D)}, opts);  // chunk sums
      cuda::aft_local_forward(desc(qc), desc(kc), desc(vc), desc(wc), desc(y), desc(L), desc(r), desc(work),
                              window, causal);
    }());
  } else {
    dispatch_float(q.dtype(), op, [&]<class T>() {
      local_forward<T>(qc.data<T>(), kc.data<T>(), vc.data<T>(), wc.data<T>(), y.data<T>(),
                       L.data<T>(), r.data<T>(), s, band);
    });
  }
  if (!autograd::needs_grad({&q, &k, &v, &w_band})) return y;

  // dq needs q and r only; dk, dv, dw need everything.
  const bool kvw = autograd::needs_grad({&k, &v, &w_band}), nw = autograd::needs_grad(w_band);
  [[maybe_unused]] const bool nkv = autograd::needs_grad(k, v);  // (CUDA: skip dk, dv when unused)
  SavedTensor sq(qc), sr(r);
  SavedTensor sk, sv, sw, sL;
  if (kvw) sk = kc, sv = vc, sw = wc, sL = L;
  autograd::record(op, {q, k, v, w_band}, {y}, [=](const TensorList& g) -> TensorList {
    Tensor gc = g[0].contiguous();
    const Tensor& qv = sq.get();
    const TensorOptions o(qv.dtype(), qv.device());
    Tensor dq = empty(qv.shape(), o), gr = empty(qv.shape(), o);
    Tensor dk, dv, dw;
    if (qv.is_cuda()) {
      AFT_CUDA_CALL([&] {
        Tensor work;
        if (nkv) {
          dk = empty(qv.shape(), o), dv = empty(qv.shape(), o);
          work = empty({cuda::aft_local_work_elems(s.B, s.T, s.D)}, o);
        }
        if (nw) dw = zeros(sw.get().shape(), o);  // cells whose key is outside [0, T) stay 0
        const Tensor none;
        cuda::aft_local_backward(desc(qv), desc(gc), desc_or_null(kvw ? sk.get() : none),
                                 desc_or_null(kvw ? sv.get() : none), desc_or_null(kvw ? sw.get() : none),
                                 desc_or_null(kvw ? sL.get() : none), desc(sr.get()), desc(gr), desc_or_null(work),
                                 desc(dq), desc_or_null(dk), desc_or_null(dv), desc_or_null(dw), band.W,
                                 band.causal);
      }());
      return TensorList{dq, dk, dv, dw};
    }
    dispatch_float(qv.dtype(), op, [&]<class T>() {
      gate_backward<T>(qv.data<T>(), gc.data<T>(), sr.get().data<T>(), qv.numel(), gr.data<T>(),
                       dq.data<T>(), [](int64_t i) { return i; });
      if (!kvw) return;
      dk = empty(qv.shape(), o);
      dv = empty(qv.shape(), o);
      if (nw) dw = empty(sw.get().shape(), o);
      local_backward<T>(sk.get().data<T>(), sv.get().data<T>(), sw.get().data<T>(),
                        sL.get().data<T>(), sr.get().data<T>(), gr.data<T>(), dk.data<T>(),
                        dv.data<T>(), nw ? dw.data<T>() : nullptr, s, band);
    });
    return TensorList{dq, dk, dv, dw};
  });
  return y;
}

}  // namespace aft
