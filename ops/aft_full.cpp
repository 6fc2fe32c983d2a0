// ops/aft_full.cpp: AFT-full, the Attention Free Transformer with a learned pairwise position bias
// w [T, T] shared by the batch and the channels. q, k, v, y are [B, T, D]; per b and channel d:
//
//   y[t] = sigmoid(q[t]) · Σ_t' e^{k[t'] + w[t,t']} v[t'] / Σ_t' e^{k[t'] + w[t,t']}   (t' <= t if
//   causal)
//
// Why it is a matrix product: e^{k[t'] + w[t,t']} = e^{w[t,t']} · e^{k[t']}, so per batch
//   Num = E @ (P ⊙ v),  Den = E @ P,  E = e^w [T, T],  P = e^k [T, D]
// which costs O(T²·D) multiply-adds and no T×T×D tensor. The catch is the exponentials: with
// |k|, |w| up to 80, e^{k+w} spans e^{±160}, beyond float32 (e^{±88}). Shifting k by its max per
// channel and w by its max per row (the usual fix) avoids overflow but not underflow: a key with
// the largest k may meet the most negative w of the row, and both shifted factors of every term
// can then round to 0 (0/0). What never fails is shifting by the max of k + w per (row, channel),
// which does not factor. This kernel gets both, per tile of TJ keys:
//
//   shift of (row t, tile J, channel d): c = Mk[J,d] + Mw[t,J]   (max of k over J, of w[t, J])
//   E[t,t'] = e^{w[t,t'] - Mw[t,J]} <= 1,   P[t',d] = e^{k[t',d] - Mk[J,d]} <= 1
//   tile sums, a small matrix product:  n = Σ_{t'∈J} E[t,t'] P[t',d] v[t',d],  dn = Σ E P
//
// This is exact up to rounding whenever the tile's largest term e^{max(k+w) - c} is not tiny,
// i.e. whenever gap = c - max_{t'∈J}(k + w) is small. The gap is bounded cheaply from above with
// two candidates for the max, the key of largest w (index cw[t,J]) and the key of largest k
// (index ak[J,d]): LB = max(Mw + k[cw], Mk + w[t, ak]) <= max(k + w), gap <= c - LB.
//   gap <= kSafeGap (50 in float32, 600 in float64): the separable tile is used; its sums are
//     rescaled to the shift LB (factor e^{c - LB} <= e^{gap}) and pushed into the row's running
//     sum (Acc, core/math/aft.h): the largest term of the tile is >= e^{-gap}, far above the float32
//     underflow (e^{-87}), so every term that matters is a normal number.
//   else (only for adversarial inputs; never in float64 with |k|, |w| <= 80, where the bound
//   is <= Mk - k[cw] <= 160):
//     that (row, tile, chunk of channels) is summed exactly: the max of k + w over the tile, then
//     e^{k + w - max}, one exp per term.
// So the max of k + w per (row, channel) is maintained online, tile by tile, with rescaling; the
// forward is a GEMM-like loop (2 multiply-adds per (t, t', d)) plus O(T²/TJ·D) bookkeeping.
//
// Saved for backward: q, k, v, w, and per (b, t, d) L = log-sum-exp of the row and r (y =
// sigmoid(q)·r). Backward (gr = g·sigmoid(q), a[t,t'] = e^{k[t'] + w[t,t'] - L[t]} <= 1):
//   dv[t'] = Σ_t gr[t] a[t,t'],   dk[t'] = Σ_t gr[t] a[t,t'] (v[t'] - r[t]),
//   dw[t,t'] = Σ_{b,d} gr[t] a[t,t'] (v[t'] - r[t]),   dq = g r sigmoid'(q)
// with a = (gr·R)·E[t,t']·P[t'], R = e^{Mk + Mw - L[t]} <= e^{gap}, the same tiles and the same
// safe/exact rule. dk is computed from (v[t'] - r[t]) per term, not as v·dv - Σ a gr r, so it
// has no cancellation of its own. One task per key tile J owns dk, dv of its keys and dw[:, J]:
// sums over t, b and d run in a fixed order on one thread (deterministic, no atomics).
// Memory: forward O(B·T·D) for P, P⊙v and the saved L, r; backward O(TJ·D) per task. Never T×T
// beyond w itself and its gradient.
// CUDA tensors run cuda/aft_full.cu and the tiled engine of cuda/aft_tiles.cu: the same tiles, shifts and safe/exact rule as GPU thread
// blocks (docs/aft.md section 7).
#include "autograd/tape.h"
#include "cuda/aft.h"
#include "ops/aft_common.h"
#include "ops/ops.h"

namespace aft {

namespace {

using namespace aftk;

constexpr int64_t kTI = 32;   // forward: target rows per task (a multiple of 4)
constexpr int64_t kTJ = 128;  // forward: keys per tile
constexpr int64_t kTJb = 64;  // backward: keys per tile (its P, v, dk, dv tiles stay in L2)
constexpr int kRows = 8;      // backward: target rows sharing one pass over the key tile

// ---------------------------------------------------------------- forward

template <class T>
void full_forward(const T* q, const T* k, const T* v, const T* w, T* y, T* L, T* r, const Dims& s,
                  bool causal) {
  constexpr int W = Simd<T>::W;
  using V = Vec<T>;
  const int64_t T_ = s.T, D = s.D, nc = lane_chunks(D, W);
  const int64_t nJ = (T_ + kTJ - 1) / kTJ, nI = (T_ + kTI - 1) / kTI;
  // Pass 1, per (b, key tile J, chunk): Mk, ak, P = e^{k - Mk}, PV = P ⊙ v. P and PV are stored
  // chunk-major, one cache line (PV, P) per key: PP[((b·nc + c)·T + t')·2 + {0, 1}]. The
  // micro-kernel then reads consecutive lines, not rows D·sizeof(T) apart (a power-of-two stride
  // that maps a whole tile to a few L1 sets).
  std::vector<V> Mk(static_cast<size_t>(s.B * nJ * nc));
  std::vector<int64_t> ak(static_cast<size_t>(s.B * nJ * nc * W));
  std::vector<V> PP(static_cast<size_t>(s.B * nc * T_ * 2));
  parallel_for(0, s.B * nJ, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nJ, J = i % nJ, j0 = J * kTJ, j1 = std::min(T_, j0 + kTJ),
                    o = b * T_ * D;
      for (int64_t c = 0; c < nc; ++c) {
        const int n = lanes(D, c, W);
        const size_t mi = static_cast<size_t>(i * nc + c);
        key_max(k + o, j0, j1, D, c, n, &Mk[mi], &ak[mi * W]);
        V* pp = &PP[static_cast<size_t>((b * nc + c) * T_ * 2)];
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t e = o + j * D + c * W;
          V p = vexp(load(k + e, n) - Mk[mi]);
          pp[2 * j] = p * load(v + e, n);
          pp[2 * j + 1] = p;
        }
      }
    }
  });
  // Pass 2, one task per (b, row tile I): running sums of its rows over the key tiles.
  parallel_for(0, s.B * nI, 1, [&](int64_t i0, int64_t i1) {
    std::vector<Acc<T>> acc(static_cast<size_t>(kTI * nc));
    std::vector<T> E(static_cast<size_t>(kTI * kTJ)), Mw(kTI);
    std::vector<int64_t> cw(kTI), jend(kTI);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nI, I = causal ? zigzag(i % nI, nI) : i % nI;
      const int64_t t0 = I * kTI, t1 = std::min(T_, t0 + kTI), o = b * T_ * D;
      std::fill(acc.begin(), acc.end(), Acc<T>::empty());
      for (int64_t J = 0; J < nJ; ++J) {
        if (causal && J * kTJ > t1 - 1) break;  // keys after the tile's last row
        const int64_t j0 = J * kTJ, j1 = std::min(T_, j0 + kTJ), tj = j1 - j0;
        for (int64_t t = t0; t < t0 + kTI; ++t) {  // rows past T or before the tile: E = 0
          const int64_t ti = t - t0;
          jend[ti] = t >= t1 ? j0 : (causal ? std::min(j1, t + 1) : j1);
          if (jend[ti] > j0)
            bias_row(w + t * T_, j0, jend[ti], tj, &E[ti * kTJ], &Mw[ti], &cw[ti]);
          else
            std::fill(&E[ti * kTJ], &E[ti * kTJ] + tj, T(0));
        }
        for (int64_t c = 0; c < nc; ++c) {
          const int n = lanes(D, c, W);
          const size_t mi = static_cast<size_t>((b * nJ + J) * nc + c);
          const V* pp = &PP[static_cast<size_t>((b * nc + c) * T_ * 2)];
          for (int64_t ti = 0; ti < kTI; ti += 4) {
            // Micro-kernel: 4 rows × one chunk, n = E @ PV and dn = E @ P over the tile.
            V n0{}, n1{}, n2{}, n3{}, d0{}, d1{}, d2{}, d3{};
            const T *e0 = &E[ti * kTJ], *e1 = e0 + kTJ, *e2 = e1 + kTJ, *e3 = e2 + kTJ;
            for (int64_t j = 0; j < tj; ++j) {
              const V pv = pp[2 * (j0 + j)], p = pp[2 * (j0 + j) + 1];
              n0 += e0[j] * pv, d0 += e0[j] * p;
              n1 += e1[j] * pv, d1 += e1[j] * p;
              n2 += e2[j] * pv, d2 += e2[j] * p;
              n3 += e3[j] * pv, d3 += e3[j] * p;
            }
            const V nn[4] = {n0, n1, n2, n3}, dd[4] = {d0, d1, d2, d3};
            for (int64_t u = 0; u < 4; ++u) {
              const int64_t row = ti + u, t = t0 + row;
              if (jend[row] <= j0) continue;
              const T* wrow = w + t * T_;
              V LB;
              Acc<T>& st = acc[static_cast<size_t>(row * nc + c)];
              if (tile_shift(k + o, wrow, D, c, n, Mk[mi], &ak[mi * W], Mw[row], cw[row], j0,
                             jend[row], &LB)) {
                V f = vexp(Mk[mi] + Mw[row] - LB);
                st.push(LB, nn[u] * f, dd[u] * f);
                continue;
              }
              // Exact tile: max of k + w, then e^{k + w - max}.
              V mx = splat<T>(static_cast<T>(kEmpty)), A{}, Bs{};
              for (int64_t j = j0; j < jend[row]; ++j)
                mx = vmax(mx, load(k + o + j * D + c * W, n) + wrow[j]);
              for (int64_t j = j0; j < jend[row]; ++j) {
                V e = vexp(load(k + o + j * D + c * W, n) + wrow[j] - mx);
                A += e * load(v + o + j * D + c * W, n);
                Bs += e;
              }
              st.push(mx, A, Bs);
            }
          }
        }
      }
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t c = 0; c < nc; ++c) {
          const int n = lanes(D, c, W);
          const Acc<T>& st = acc[static_cast<size_t>((t - t0) * nc + c)];
          const int64_t e = o + t * D + c * W;
          store_row(st, q, y, L, r, e, n);
        }
    }
  });
}

// ---------------------------------------------------------------- backward

// dk, dv [B, T, D]; dw [T, T] or null. gr = g·sigmoid(q).
template <class T>
void full_backward(const T* k, const T* v, const T* w, const T* L, const T* r, const T* gr, T* dk,
                   T* dv, T* dw, const Dims& s, bool causal) {
  constexpr int W = Simd<T>::W;
  using V = Vec<T>;
  const int64_t T_ = s.T, D = s.D, nc = lane_chunks(D, W), nJ = (T_ + kTJb - 1) / kTJb;
  if (dw) std::fill(dw, dw + T_ * T_, T(0));
  parallel_for(0, nJ, 1, [&](int64_t i0, int64_t i1) {
    const size_t tile = static_cast<size_t>(kTJb * D);
    std::vector<T> Pt(tile), dva(tile), dka(tile), E(kRows * kTJb), Mw(kRows);
    std::vector<V> Mk(static_cast<size_t>(nc)), G(static_cast<size_t>(kRows * nc)), R(G.size());
    std::vector<int64_t> ak(static_cast<size_t>(nc * W)), cw(kRows), jend(kRows);
    std::vector<char> exact(G.size());
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t J = causal ? zigzag(i, nJ) : i;
      const int64_t j0 = J * kTJb, j1 = std::min(T_, j0 + kTJb), tj = j1 - j0;
      for (int64_t b = 0; b < s.B; ++b) {
        const int64_t o = b * T_ * D;
        const T* kb = k + o;
        const T* vb = v + o;
        for (int64_t c = 0; c < nc; ++c) {  // key side of the tile: Mk, ak, P
          const int n = lanes(D, c, W);
          key_max(kb, j0, j1, D, c, n, &Mk[c], &ak[c * W]);
          for (int64_t j = j0; j < j1; ++j)
            store(&Pt[(j - j0) * D + c * W], vexp(load(kb + j * D + c * W, n) - Mk[c]), n);
        }
        std::fill(dva.begin(), dva.end(), T(0));
        std::fill(dka.begin(), dka.end(), T(0));
        T* __restrict dvp = dva.data();
        T* __restrict dkp = dka.data();
        const T* __restrict Pp = Pt.data();
        // Target rows in groups of kRows (rows past T: E = 0, G = 0). G, R are stored [c][u].
        for (int64_t tb = causal ? j0 : 0; tb < T_; tb += kRows) {
          bool any_exact = false;
          int64_t jmax = j0;
          for (int64_t u = 0; u < kRows; ++u) {
            const int64_t t = tb + u;
            T* Eu = &E[u * kTJb];
            jend[u] = t < T_ ? (causal ? std::min(j1, t + 1) : j1) : j0;
            jmax = std::max(jmax, jend[u]);
            if (jend[u] == j0) {
              std::fill(Eu, Eu + tj, T(0));
              for (int64_t c = 0; c < nc; ++c)
                G[c * kRows + u] = R[c * kRows + u] = V{}, exact[c * kRows + u] = 0;
              continue;
            }
            const T* wrow = w + t * T_;
            bias_row(wrow, j0, jend[u], tj, Eu, &Mw[u], &cw[u]);
            for (int64_t c = 0; c < nc; ++c) {  // G = gr·R with R = e^{Mk + Mw - L} <= e^{gap}
              const int n = lanes(D, c, W);
              const int64_t e = o + t * D + c * W;
              V LB;
              const bool ok =
                  tile_shift(kb, wrow, D, c, n, Mk[c], &ak[c * W], Mw[u], cw[u], j0, jend[u], &LB);
              exact[c * kRows + u] = !ok;
              any_exact = any_exact || !ok;
              const V grt = load(gr + e, n);
              G[c * kRows + u] =
                  !ok ? grt : (lane_mask<T>(n) ? grt * vexp(Mk[c] + Mw[u] - load(L + e, n)) : V{});
              R[c * kRows + u] = load(r + e, n);
            }
          }
          if (!any_exact) {
            // The common case, kRows rows at once: x_u = G_u E_u[t'] P[t'] = gr·a for row u, then
            //   dv[t'] += Σ_u x_u,  dk[t'] += Σ_u x_u (v[t'] - r_u),  dw[t_u, t'] += Σ_d x_u (v[t']
            //   - r_u)
            // (the tile rows of dv, dk, P, v are loaded once for kRows rows).
            for (int64_t j = j0; j < jmax; ++j) {
              const int64_t jj = j - j0;
              T e[kRows];
              V wacc[kRows];
              for (int u = 0; u < kRows; ++u) e[u] = E[u * kTJb + jj], wacc[u] = V{};
              for (int64_t c = 0; c < nc; ++c) {
                const int n = lanes(D, c, W);
                const int64_t jo = jj * D + c * W;
                const V p = load(Pp + jo, n), vv = load(vb + j * D + c * W, n);
                const V* Gc = &G[c * kRows];
                const V* Rc = &R[c * kRows];
                V x[kRows], yv[kRows];
#pragma GCC unroll 8
                for (int u = 0; u < kRows; ++u) {
                  x[u] = Gc[u] * e[u] * p, yv[u] = x[u] * (vv - Rc[u]);
                  wacc[u] += yv[u];
                }
                // Pairwise sums over the rows (a serial chain of 8 adds would stall on latency).
#pragma GCC unroll 8
                for (int h = kRows / 2; h > 0; h /= 2)
                  for (int u = 0; u < h; ++u) x[u] += x[u + h], yv[u] += yv[u + h];
                store(dvp + jo, load(dvp + jo, n) + x[0], n);
                store(dkp + jo, load(dkp + jo, n) + yv[0], n);
              }
              if (dw)
                for (int u = 0; u < kRows; ++u)
                  if (j < jend[u]) dw[(tb + u) * T_ + j] += hsum(wacc[u]);
            }
            continue;
          }
          // Some (row, chunk) needs the exact form a = e^{k + w - L}: one row at a time.
          for (int64_t u = 0; u < kRows; ++u) {
            const int64_t t = tb + u;
            for (int64_t j = j0; j < jend[u]; ++j) {
              const int64_t jj = j - j0;
              V wacc{};
              for (int64_t c = 0; c < nc; ++c) {
                const int n = lanes(D, c, W);
                const int64_t jo = jj * D + c * W;
                const V Gc = G[c * kRows + u];
                V x =
                    exact[c * kRows + u]
                        ? (lane_mask<T>(n) ? Gc * vexp(load(kb + j * D + c * W, n) + w[t * T_ + j] -
                                                       load(L + o + t * D + c * W, n))
                                           : V{})
                        : Gc * E[u * kTJb + jj] * load(Pp + jo, n);
                V yv = x * (load(vb + j * D + c * W, n) - R[c * kRows + u]);
                store(dvp + jo, load(dvp + jo, n) + x, n);
                store(dkp + jo, load(dkp + jo, n) + yv, n);
                wacc += yv;
              }
              if (dw) dw[t * T_ + j] += hsum(wacc);
            }
          }
        }
        std::copy(dva.begin(), dva.begin() + tj * D, dv + o + j0 * D);
        std::copy(dka.begin(), dka.begin() + tj * D, dk + o + j0 * D);
      }
    }
  });
}

}  // namespace

Tensor aft_full(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w, bool causal) {
  const char* op = "aft_full";
  const Dims s = check_qkv(op, q, k, v);
  check_bias(op, w, q, Shape{s.T, s.T}, "[T, T]");
  Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(), vc = v.detach().contiguous();
  Tensor wc = w.detach().contiguous();
  const TensorOptions opts(q.dtype(), q.device());
  Tensor y = empty(q.shape(), opts), L = empty(q.shape(), opts), r = empty(q.shape(), opts);
  if (q.is_cuda()) {
    AFT_CUDA_CALL(cuda::aft_full_forward(desc(qc), desc(kc), desc(vc), desc(wc), desc(y), desc(L), desc(r),
                                         causal));
  } else {
    dispatch_float(q.dtype(), op, [&]<class T>() {
      full_forward<T>(qc.data<T>(), kc.data<T>(), vc.data<T>(), wc.data<T>(), y.data<T>(),
                      L.data<T>(), r.data<T>(), s, causal);
    });
  }
  record_aft(op, q, k, v, &w, {qc, kc, vc, wc, L, r}, y, [=](const AftSaved& sv, const Tensor& g, AftWants want) {
    const TensorOptions o(sv.q.dtype(), sv.q.device());
    AftGrads d{.dq = empty(sv.q.shape(), o)};
    Tensor gr = empty(sv.q.shape(), o);
    if (want.kv) d.dk = empty(sv.q.shape(), o), d.dv = empty(sv.q.shape(), o);
    if (sv.q.is_cuda()) {
      if (want.w) d.dw = zeros(sv.w.shape(), o);  // the kernel writes the cells rows see
      AFT_CUDA_CALL(cuda::aft_full_backward(desc(sv.q), desc(g), desc_or_null(sv.k), desc_or_null(sv.v),
                                            desc_or_null(sv.w), desc_or_null(sv.L), desc(sv.r), desc(gr),
                                            desc(d.dq), desc_or_null(d.dk), desc_or_null(d.dv),
                                            desc_or_null(d.dw), causal));
      return d;
    }
    dispatch_float(sv.q.dtype(), op, [&]<class T>() {
      if (!cpu_gate_and_alloc<T>(sv, g, gr, d, want)) return;
      full_backward<T>(sv.k.data<T>(), sv.v.data<T>(), sv.w.data<T>(), sv.L.data<T>(), sv.r.data<T>(),
                       gr.data<T>(), d.dk.data<T>(), d.dv.data<T>(), want.w ? d.dw.data<T>() : nullptr, s,
                       causal);
    });
    return d;
  });
  return y;
}

}  // namespace aft
