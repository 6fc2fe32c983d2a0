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
// and add them as stable running sums (Acc, core/math/aft.h: a scale e^m and two mantissas). The prefix is
// a running sum advanced by one key per row; the suffix sums are one reverse scan stored per row.
// The band is cut at the global key tiles [J·128, (J+1)·128) into <= (2W-1)/128 + 2 segments per
// row, each summed with AFT-full's separable tile (ops/aft_full.cpp; helpers in aft_common.h):
//   E[t,t'] = e^{w - Mw[t,seg]} <= 1   (once per call: w is shared by batches and channels)
//   P[t']   = e^{k - Mk[tile]} <= 1    (once per (batch, chunk))
//   n = Σ E·P·v, dn = Σ E·P over the segment, pushed into the row's Acc at the shift LB with
//   the factor e^{Mk + Mw - LB}
// when aftk::tile_shift certifies gap = Mk + Mw - LB <= kSafeGap (so the segment's largest term
// is >= e^{-gap}, no underflow that matters); otherwise (adversarial inputs only) the segment is
// summed exactly: its max of k + w, then e^{k + w - max}. Nothing is subtracted: the textbook
// form "global sum + band correction with (e^w - 1)" cancels catastrophically when a band key
// dominates the global sum and its w is very negative (e.g. k = 80, w = -80: the global sum is
// e^80, the correction -e^80 + 1). Every piece pushed has b >= 1 at its own shift, so the row's
// Den >= 1: no overflow, no 0/0.
// Cost: forward 2 multiply-adds per (t, t', d) in the band, exps O(T·(2W-1) + T·D·(2W/128));
// memory O(T·(2W-1)) for E and O(T·D) per task for the suffix sums and P.
//
// Saved for backward: q, k, v, w_band, and per (b, t, d) L = log-sum-exp of the row and r = the
// normalised sum (y = sigmoid(q)·r).
//
// Backward (gr = g·sigmoid(q), a[t, t'] = e^{k[t'] + w'[t,t'] - L[t]}), per key t':
//   dv[t'] = Σ_t gr[t] a[t,t'],  dk[t'] = Σ_t gr[t] a[t,t'] (v[t'] - r[t]),
//   dw_band[t, j] = Σ_{b,d} gr[t] a[t,t'] (v[t'] - r[t])  for the band cell of (t, t').
// The targets t that see key t' are the mirror image of the forward: far (bias 0) targets
// t <= t'-W and t >= t'+W (causal: t >= t'+W only) enter through running sums over t with
// exponent -L[t] (aftk::far_grad); band targets use the forward's segments, a = G·E·P with
// G = gr·e^{Mk + Mw - L} (or one exp per term in an exact segment).
// dw_band sums over batch and channels: each thread slot adds into its own [T, nb] buffer and
// the buffers are added in slot order (deterministic for a given thread count).
//
// Work split: one task per (batch, channel chunk of 8 floats / 4 doubles).
// CUDA tensors run cuda/aft_local.cu (the tiled engine of cuda/aft_tiles.cu with a band bias, plus
// chunked prefix/suffix scans for the far keys; docs/aft.md section 7).
#include "autograd/tape.h"
#include "cuda/aft.h"
#include "ops/aft_common.h"
#include "ops/ops.h"

namespace aft {

namespace {

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

// The band is cut at the global key tiles [J·kTJ, (J+1)·kTJ): row t's band keys [lo(t), hi(t)]
// meet at most nts tiles, its "segments" (slot = J - lo(t)/kTJ).
constexpr int64_t kTJ = 128;

// The bias side of the segments, the same for every batch and channel (computed once per call):
// per (row, slot) Mw = max of w over the segment and cw = its key (aftk::bias_row), and
// E = e^{w - Mw} <= 1 in the band layout of w_band.
template <class T>
struct BandTiles {
  int64_t nts = 0;
  std::vector<T> E, Mw;
  std::vector<int64_t> cw;
};
template <class T>
void band_tiles(const T* wb, int64_t T_, const Band& band, BandTiles<T>& bt) {
  const int64_t nb = band.nb, nts = std::min(T_, nb) / kTJ + 2;
  bt.nts = nts;
  bt.E.resize(static_cast<size_t>(T_ * nb));
  bt.Mw.resize(static_cast<size_t>(T_ * nts));
  bt.cw.resize(static_cast<size_t>(T_ * nts));
  parallel_for(0, T_, 64, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t lo = band.lo(t), hi = band.hi(t, T_), off = t * nb + band.col(t, 0);
      for (int64_t J = lo / kTJ; J * kTJ <= hi; ++J) {
        const int64_t s0 = std::max(lo, J * kTJ), s1 = std::min(hi + 1, (J + 1) * kTJ);
        const int64_t si = t * nts + J - lo / kTJ;
        bias_row(wb + off, s0, s1, s1 - s0, bt.E.data() + off + s0, &bt.Mw[si], &bt.cw[si]);
      }
    }
  });
}

// The key side of one (batch, chunk): per key tile Mk = max k, ak = its key (aftk::key_max on
// the packed columns: row stride one vector), P = e^{k - Mk} <= 1, and PV = P·v if asked.
template <class T>
struct KeyTiles {
  std::vector<Vec<T>> Mk, P, PV;
  std::vector<int64_t> ak;
};
template <class T>
void key_tiles(const std::vector<Vec<T>>& kp, const Vec<T>* vp, int64_t T_, int n,
               KeyTiles<T>& kt) {
  constexpr int W = Simd<T>::W;
  const int64_t nJ = (T_ + kTJ - 1) / kTJ;
  kt.Mk.resize(static_cast<size_t>(nJ));
  kt.ak.resize(static_cast<size_t>(nJ * W));
  kt.P.resize(static_cast<size_t>(T_));
  if (vp) kt.PV.resize(static_cast<size_t>(T_));
  const T* kf = reinterpret_cast<const T*>(kp.data());
  for (int64_t J = 0; J < nJ; ++J) {
    const int64_t j0 = J * kTJ, j1 = std::min(T_, j0 + kTJ);
    key_max(kf, j0, j1, W, 0, n, &kt.Mk[J], &kt.ak[J * W]);
    for (int64_t j = j0; j < j1; ++j) {
      kt.P[j] = vexp(kp[j] - kt.Mk[J]);
      if (vp) kt.PV[j] = kt.P[j] * vp[j];
    }
  }
}

// Lane sums of kLanes vectors at once, out[i] = Σ_l y[i][l]: pairwise shuffles and adds (a
// transpose-and-add tree, as vhaddps), log2(lanes) + 1 levels instead of kLanes serial sums.
inline Vec<float> hsums(const Vec<float>* y) {
  auto hadd = [](Vec<float> a, Vec<float> b) {  // [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, ...]
    return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
           __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  };
  // q0 = [low-half sums of y0..y3, high-half sums of y0..y3], q1 the same for y4..y7.
  const Vec<float> q0 = hadd(hadd(y[0], y[1]), hadd(y[2], y[3]));
  const Vec<float> q1 = hadd(hadd(y[4], y[5]), hadd(y[6], y[7]));
  return __builtin_shufflevector(q0, q1, 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(q0, q1, 4, 5, 6, 7, 12, 13, 14, 15);
}
inline Vec<double> hsums(const Vec<double>* y) {
  auto hadd = [](Vec<double> a, Vec<double> b) {  // [a0+a1, b0+b1, a2+a3, b2+b3]
    return __builtin_shufflevector(a, b, 0, 4, 2, 6) + __builtin_shufflevector(a, b, 1, 5, 3, 7);
  };
  const Vec<double> h01 = hadd(y[0], y[1]), h23 = hadd(y[2], y[3]);
  return __builtin_shufflevector(h01, h23, 0, 1, 4, 5) +
         __builtin_shufflevector(h01, h23, 2, 3, 6, 7);
}

// The separable sums of one forward segment: n = Σ_{t'∈[s0,s1)} E[t'] PV[t'], d = Σ E[t'] P[t']
// (er[t'] = E of key t'). Out of line so that its four accumulators stay in registers.
template <class T>
[[gnu::noinline]] void segment_sums(const T* er, const Vec<T>* P, const Vec<T>* PV, int64_t s0,
                                    int64_t s1, Vec<T>& nsum, Vec<T>& dsum) {
  Vec<T> n0{}, n1{}, d0{}, d1{};
  int64_t j = s0;
  for (; j + 1 < s1; j += 2) {  // two chains per sum (FMA latency)
    n0 += er[j] * PV[j], d0 += er[j] * P[j];
    n1 += er[j + 1] * PV[j + 1], d1 += er[j + 1] * P[j + 1];
  }
  if (j < s1) n0 += er[j] * PV[j], d0 += er[j] * P[j];
  nsum = n0 + n1, dsum = d0 + d1;
}

// Band gradient of one separable backward segment (row t, keys [s0, s1)): x = G·E[t']·P[t'],
// dv[t'] += x, dk[t'] += y = x·(v[t'] - r[t]), dw cell of t' += Σ_lanes y (dwr may be null).
template <class T>
[[gnu::noinline]] void segment_grad(const T* er, const Vec<T>* P, const Vec<T>* vp, Vec<T> G,
                                    Vec<T> rt, int64_t s0, int64_t s1, Vec<T>* dvp, Vec<T>* dkp,
                                    T* dwr) {
  constexpr int W = Simd<T>::W;
  int64_t j = s0;
  for (; j + W <= s1; j += W) {  // W keys at a time: their dw sums in one hsums
    Vec<T> y[W];
    for (int i = 0; i < W; ++i) {
      const Vec<T> x = G * (er[j + i] * P[j + i]);
      y[i] = x * (vp[j + i] - rt);
      dvp[j + i] += x;
      dkp[j + i] += y[i];
    }
    if (dwr) store(dwr + j, load(dwr + j) + hsums(y));
  }
  for (; j < s1; ++j) {
    const Vec<T> x = G * (er[j] * P[j]), y = x * (vp[j] - rt);
    dvp[j] += x;
    dkp[j] += y;
    if (dwr) dwr[j] += hsum(y);
  }
}

// Forward of one (batch, chunk). Pointers are at element (b, 0, chunk start); D is the row stride.
// Band segment (row t, tile J, keys [s0, s1)), the separable tile of ops/aft_full.cpp:
//   n = Σ E[t,t'] PV[t'],  dn = Σ E[t,t'] P[t']  (2 multiply-adds per key)
// pushed at the shift LB with the factor e^{Mk + Mw - LB} when aftk::tile_shift says it is safe,
// else the segment is summed exactly (its max of k + w, then e^{k + w - max}).
template <class T>
void local_forward_chunk(const T* q, const T* k, const T* v, const T* wb, T* y, T* L, T* r,
                         int64_t T_, int64_t D, int n, const Band& band, const BandTiles<T>& bt,
                         std::vector<Acc<T>>& suf, std::vector<Vec<T>>& kp, std::vector<Vec<T>>& vp,
                         KeyTiles<T>& kt) {
  using V = Vec<T>;
  constexpr int W = Simd<T>::W;
  const V one = splat<T>(1);
  pack(k, T_, D, n, kp);
  pack(v, T_, D, n, vp);
  key_tiles(kp, vp.data(), T_, n, kt);
  const T* kf = reinterpret_cast<const T*>(kp.data());
  const V *P = kt.P.data(), *PV = kt.PV.data();
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
    Acc<T> row = pre;
    if (!band.causal && t + band.W < T_) row.merge(suf[t + band.W]);
    const int64_t lo = band.lo(t), hi = band.hi(t, T_), off = t * band.nb + band.col(t, 0);
    const T* wr = wb + off;           // wr[t'] = bias of key t'
    const T* er = bt.E.data() + off;  // er[t'] = e^{w - Mw} of key t'
    for (int64_t J = lo / kTJ; J * kTJ <= hi; ++J) {
      const int64_t s0 = std::max(lo, J * kTJ), s1 = std::min(hi + 1, (J + 1) * kTJ);
      const int64_t si = t * bt.nts + J - lo / kTJ;
      const T Mw = bt.Mw[si];
      V LB;
      if (tile_shift(kf, wr, W, 0, n, kt.Mk[J], &kt.ak[J * W], Mw, bt.cw[si], s0, s1, &LB)) {
        V ns, ds;
        segment_sums(er, P, PV, s0, s1, ns, ds);
        const V f = vexp(kt.Mk[J] + Mw - LB);
        row.push(LB, ns * f, ds * f);
        continue;
      }
      V mx = splat<T>(static_cast<T>(kEmpty)), A{}, Bs{};
      for (int64_t j = s0; j < s1; ++j) mx = vmax(mx, kp[j] + wr[j]);
      for (int64_t j = s0; j < s1; ++j) {
        const V e = vexp(kp[j] + wr[j] - mx);
        A += e * vp[j];
        Bs += e;
      }
      row.push(mx, A, Bs);
    }
    store_row(row, q, y, L, r, t * D, n);
  }
}

// Per-task scratch of the backward: packed columns, dk and dv, the suffix sums, the key tiles.
template <class T>
struct LocalScratch {
  std::vector<Acc<T>> suf;
  std::vector<Vec<T>> k, v, L, r, g, dk, dv;
  KeyTiles<T> kt;
};

// Backward of one (batch, chunk): dk, dv of the chunk; dw (may be null) gets this chunk's terms.
// Far targets: per key t', running sums over t (aftk::far_grad). Band: per target row t and
// segment (the forward's), a = e^{k + w - L} = G·E[t,t']·P[t'] with G = gr·e^{Mk + Mw - L} <=
// gr·e^{gap} (L >= max k + w >= LB), or gr·e^{k + w - L} (one exp per term) where the segment
// is exact. Rows outer, keys inner: dw, E and w are read along a row of the band (contiguous),
// dk and dv of the keys accumulate in the packed buffers.
template <class T>
void local_backward_chunk(const T* k, const T* v, const T* wb, const T* L, const T* r, const T* gr,
                          T* dk, T* dv, T* dw, int64_t T_, int64_t D, int n, const Band& band,
                          const BandTiles<T>& bt, LocalScratch<T>& sc) {
  using V = Vec<T>;
  constexpr int W = Simd<T>::W;
  pack(k, T_, D, n, sc.k);
  pack(v, T_, D, n, sc.v);
  pack(L, T_, D, n, sc.L);
  pack(r, T_, D, n, sc.r);
  pack(gr, T_, D, n, sc.g);
  key_tiles<T>(sc.k, nullptr, T_, n, sc.kt);
  sc.dk.resize(static_cast<size_t>(T_));
  sc.dv.resize(static_cast<size_t>(T_));
  const V *kp = sc.k.data(), *vp = sc.v.data(), *Lp = sc.L.data(), *rp = sc.r.data(),
          *gp = sc.g.data(), *P = sc.kt.P.data();
  V *dkp = sc.dk.data(), *dvp = sc.dv.data();
  const T* kf = reinterpret_cast<const T*>(kp);
  const auto valid = lane_mask<T>(n);
  // Far targets. suf[t] = targets t..T-1 (exponent -L, sums of gr and gr·r).
  std::vector<Acc<T>>& suf = sc.suf;
  suf.assign(static_cast<size_t>(T_ + 1), Acc<T>::empty());
  for (int64_t t = T_ - 1; t >= 0; --t) {
    suf[t] = suf[t + 1];
    suf[t].push(-Lp[t], gp[t], gp[t] * rp[t]);
  }
  Acc<T> pre = Acc<T>::empty();  // targets t <= t' - W (non-causal)
  for (int64_t tp = 0; tp < T_; ++tp) {
    V dvv{}, dkv{};
    if (!band.causal && tp >= band.W) {
      const int64_t t = tp - band.W;
      pre.push(-Lp[t], gp[t], gp[t] * rp[t]);
      far_grad(kp[tp], vp[tp], pre, dvv, dkv);
    }
    if (tp + band.W < T_) far_grad(kp[tp], vp[tp], suf[tp + band.W], dvv, dkv);
    dvp[tp] = dvv, dkp[tp] = dkv;
  }
  // Band targets, row by row. Padding lanes of x are 0 (G and the exact term are masked).
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t lo = band.lo(t), hi = band.hi(t, T_), off = t * band.nb + band.col(t, 0);
    const T* wr = wb + off;
    const T* er = bt.E.data() + off;
    T* dwr = dw ? dw + off : nullptr;  // dwr[t'] = the cell of key t'
    const V g = gp[t], rt = rp[t], Lt = Lp[t];
    for (int64_t J = lo / kTJ; J * kTJ <= hi; ++J) {
      const int64_t s0 = std::max(lo, J * kTJ), s1 = std::min(hi + 1, (J + 1) * kTJ);
      const int64_t si = t * bt.nts + J - lo / kTJ;
      V LB;
      const bool ok = tile_shift(kf, wr, W, 0, n, sc.kt.Mk[J], &sc.kt.ak[J * W], bt.Mw[si],
                                 bt.cw[si], s0, s1, &LB);
      if (ok) {
        const V G = valid ? g * vexp(sc.kt.Mk[J] + bt.Mw[si] - Lt) : V{};
        segment_grad(er, P, vp, G, rt, s0, s1, dvp, dkp, dwr);
        continue;
      }
      for (int64_t j = s0; j < s1; ++j) {  // exact segment: one exp per term
        const V x = valid ? g * vexp(kp[j] + wr[j] - Lt) : V{};
        const V y = x * (vp[j] - rt);
        dvp[j] += x;
        dkp[j] += y;
        if (dwr) dwr[j] += hsum(y);
      }
    }
  }
  for (int64_t tp = 0; tp < T_; ++tp) {
    store(dv + tp * D, dvp[tp], n);
    store(dk + tp * D, dkp[tp], n);
  }
}

template <class T>
void local_forward(const T* q, const T* k, const T* v, const T* wb, T* y, T* L, T* r, const Dims& s,
                   const Band& band) {
  constexpr int W = Simd<T>::W;
  const int64_t nc = lane_chunks(s.D, W);
  BandTiles<T> bt;
  band_tiles(wb, s.T, band, bt);
  parallel_for(0, s.B * nc, 1, [&](int64_t i0, int64_t i1) {
    std::vector<Acc<T>> suf;
    std::vector<Vec<T>> kp, vp;
    KeyTiles<T> kt;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nc, c = i % nc, o = b * s.T * s.D + c * W;
      local_forward_chunk<T>(q + o, k + o, v + o, wb, y + o, L + o, r + o, s.T, s.D,
                             lanes(s.D, c, W), band, bt, suf, kp, vp, kt);
    }
  });
}

// dw_band (may be null) is summed over slots in order.
template <class T>
void local_backward(const T* k, const T* v, const T* wb, const T* L, const T* r, const T* gr, T* dk,
                    T* dv, T* dw, const Dims& s, const Band& band) {
  constexpr int W = Simd<T>::W;
  const int64_t nc = lane_chunks(s.D, W), nw = s.T * band.nb;
  const int64_t ntasks = s.B * nc;
  BandTiles<T> bt;
  band_tiles(wb, s.T, band, bt);
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
                              lanes(s.D, c, W), band, bt, sc);
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
  AFT_CHECK(window <= (int64_t{1} << 40), "aft_local: window {} is too large (at most 2^40)",
            window);
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
      cuda::aft_local_forward(desc(qc), desc(kc), desc(vc), desc(wc), desc(y), desc(L), desc(r),
                              desc(work), window, causal);
    }());
  } else {
    dispatch_float(q.dtype(), op, [&]<class T>() {
      local_forward<T>(qc.data<T>(), kc.data<T>(), vc.data<T>(), wc.data<T>(), y.data<T>(),
                       L.data<T>(), r.data<T>(), s, band);
    });
  }
  record_aft(op, q, k, v, &w_band, {qc, kc, vc, wc, L, r}, y,
             [=](const AftSaved& sv, const Tensor& g, AftWants want) {
    const TensorOptions o(sv.q.dtype(), sv.q.device());
    AftGrads d{.dq = empty(sv.q.shape(), o)};
    Tensor gr = empty(sv.q.shape(), o);
    if (want.kv) d.dk = empty(sv.q.shape(), o), d.dv = empty(sv.q.shape(), o);
    if (sv.q.is_cuda()) {
      AFT_CUDA_CALL([&] {
        Tensor work;  // chunk sums
        if (want.kv) work = empty({cuda::aft_local_work_elems(s.B, s.T, s.D)}, o);
        if (want.w) d.dw = zeros(sv.w.shape(), o);  // cells whose key is outside [0, T) stay 0
        cuda::aft_local_backward(desc(sv.q), desc(g), desc_or_null(sv.k), desc_or_null(sv.v),
                                 desc_or_null(sv.w), desc_or_null(sv.L), desc(sv.r), desc(gr),
                                 desc_or_null(work), desc(d.dq), desc_or_null(d.dk), desc_or_null(d.dv),
                                 desc_or_null(d.dw), band.W, band.causal);
      }());
      return d;
    }
    dispatch_float(sv.q.dtype(), op, [&]<class T>() {
      if (!cpu_gate_and_alloc<T>(sv, g, gr, d, want)) return;
      local_backward<T>(sv.k.data<T>(), sv.v.data<T>(), sv.w.data<T>(), sv.L.data<T>(), sv.r.data<T>(),
                        gr.data<T>(), d.dk.data<T>(), d.dv.data<T>(), want.w ? d.dw.data<T>() : nullptr, s,
                        band);
    });
    return d;
  });
  return y;
}

}  // namespace aft
