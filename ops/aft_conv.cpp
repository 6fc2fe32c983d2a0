// ops/aft_conv.cpp: AFT-conv, the Attention Free Transformer on an image with a position bias that
// depends only on the offset between pixels (a convolution kernel), one kernel per head.
// q, v, y are [B, H, W, C] (channels last); k is [B, H, W, heads] (the paper: one key per head,
// shared by the C/heads channels of the head, which own a contiguous block of C) or [B, H, W, C]
// (one key per channel); w is [heads, s, s], s odd, r = (s-1)/2. Channel c belongs to head
// h = c / (C/heads). Per batch b and channel c, for pixel p:
//
//   y[p] = sigmoid(q[p]) · (conv(e^k·v, e^w - 1) + Σ_p' e^k v) / (conv(e^k, e^w - 1) + Σ_p' e^k)
//        = sigmoid(q[p]) · Σ_p' e^{k[p'] + w'(p, p')} v[p'] / Σ_p' e^{k[p'] + w'(p, p')}
//   w'(p, p') = w[h, dy + r, dx + r] if p' = p + (dy, dx) with |dy|, |dx| <= r, else 0,
// conv being a same-padded cross-correlation (conv(x, K)[p] = Σ_o K[o] x[p + o], pixels
// outside the image are absent). Non-causal.
//
// The stable form (as aft_local, in 2-D): the keys of pixel p = (y, x) outside its window are
// four disjoint pieces, each a stable running sum (Acc, core/math/aft.h) computed once per image:
//   above  rows < y - r                            Above[y - r - 1] (prefix over rows)
//   below  rows > y + r                            Below[y + r + 1] (suffix over rows)
//   left   rows y-r..y+r, columns < x - r          RowPrefix[y'][x - r - 1], one per row y'
//   right  rows y-r..y+r, columns > x + r          RowSuffix[y'][x + r + 1], one per row y'
// and the window itself is summed exactly, e^{k + w - m} with m the largest exponent of the
// pixel (pass 1: max, pass 2: sums). No (e^w - 1) correction is subtracted from the global sum:
// that cancels catastrophically when the window holds the dominant key and w is very negative
// there. Cost per pixel and channel: s² exps for the window + 2s + 2 merges (one exp each).
//
// Saved for backward: q, k, v, w and per (b, p, c) L = log-sum-exp and r (y = sigmoid(q)·r).
// Backward (gr = g·sigmoid(q), a(p, p') = e^{k[p'] + w'(p, p') - L[p]}), per key p':
//   dv[p'] = Σ_p gr a,  dk[p'] = Σ_p gr a (v[p'] - r[p])  (summed over the head's channels
//   when k has one channel per head),  dw[h, o] = Σ_{b, p, c∈h} gr a (v[p+o] - r[p]).
// The window is symmetric (p' in window(p) iff p in window(p')), so the targets outside the
// window of key p' are the same four pieces, now of running sums over targets with exponent
// -L[p] (aftk::far_grad); targets p = p' - o in the window are summed exactly (a <= 1).
// dw: each thread slot sums into its own [heads, s, s] buffer, added in slot order.
//
// Work split: one task per (batch, chunk of 8 floats / 4 doubles of channels); lanes of one
// chunk may belong to different heads, so the key and the kernel weight are gathered per lane.
// CUDA tensors run cuda/aft_conv.cu (the same pieces, with the left/right sums as 1-D scans of the
// window rows' column sums; docs/aft.md section 7).
#include "autograd/tape.h"
#include "cuda/aft.h"
#include "ops/aft_common.h"
#include "ops/ops.h"

namespace aft {

namespace {

using namespace aftk;

struct ConvDims {
  int64_t B, H, Wd, C, Kc, heads, s;  // Kc: channels of k (heads or C)
  int64_t r() const { return (s - 1) / 2; }
  int64_t head_of(int64_t c) const { return c / (C / heads); }
  int64_t key_of(int64_t c) const { return Kc == C ? c : head_of(c); }
};

// The per-image running sums of one chunk: row prefixes/suffixes (every pixel) and prefixes/
// suffixes over whole rows. term(p) gives the (exponent, x, y) pushed for pixel p = y·Wd + x.
template <class T>
struct Grid {
  int64_t H, Wd, r;
  std::vector<Acc<T>> rp, rs, above, below;

  template <class Term>
  void build(Term term) {
    rp.resize(static_cast<size_t>(H * Wd));
    rs.resize(rp.size());
    above.resize(static_cast<size_t>(H));
    below.resize(above.size());
    for (int64_t y = 0; y < H; ++y) {
      Acc<T> a = Acc<T>::empty(), b = Acc<T>::empty();
      for (int64_t x = 0; x < Wd; ++x) {
        auto [s, u, v] = term(y * Wd + x);
        a.push(s, u, v);
        rp[y * Wd + x] = a;
      }
      for (int64_t x = Wd - 1; x >= 0; --x) {
        auto [s, u, v] = term(y * Wd + x);
        b.push(s, u, v);
        rs[y * Wd + x] = b;
      }
    }
    for (int64_t y = 0; y < H; ++y) {
      above[y] = y > 0 ? above[y - 1] : Acc<T>::empty();
      above[y].merge(rp[y * Wd + Wd - 1]);
    }
    for (int64_t y = H - 1; y >= 0; --y) {
      below[y] = y + 1 < H ? below[y + 1] : Acc<T>::empty();
      below[y].merge(rs[y * Wd]);
    }
  }

  // Everything outside the window of (y, x).
  Acc<T> far(int64_t y, int64_t x) const {
    Acc<T> f = Acc<T>::empty();
    if (y - r - 1 >= 0) f.merge(above[y - r - 1]);
    if (y + r + 1 < H) f.merge(below[y + r + 1]);
    if (x - r - 1 < 0 && x + r + 1 >= Wd) return f;
    for (int64_t yy = std::max<int64_t>(0, y - r); yy <= std::min(H - 1, y + r); ++yy) {
      if (x - r - 1 >= 0) f.merge(rp[yy * Wd + x - r - 1]);
      if (x + r + 1 < Wd) f.merge(rs[yy * Wd + x + r + 1]);
    }
    return f;
  }
};

// Per task: the keys of the chunk as one vector per pixel, and the kernel as one vector per
// offset (lanes of different heads get their head's values).
template <class T>
void gather_chunk(const T* k, const T* w, const ConvDims& d, int64_t b, int64_t c, int n,
                  std::vector<Vec<T>>& kx, std::vector<Vec<T>>& wl) {
  constexpr int W = Simd<T>::W;
  const int64_t HW = d.H * d.Wd, ss = d.s * d.s;
  kx.assign(static_cast<size_t>(HW), Vec<T>{});
  wl.assign(static_cast<size_t>(ss), Vec<T>{});
  const T* kb = k + b * HW * d.Kc;
  for (int64_t p = 0; p < HW; ++p) {
    if (d.Kc == d.C) {
      kx[p] = load(kb + p * d.C + c * W, n);
    } else {
      for (int l = 0; l < n; ++l) kx[p][l] = kb[p * d.Kc + d.key_of(c * W + l)];
    }
  }
  for (int64_t o = 0; o < ss; ++o)
    for (int l = 0; l < n; ++l) wl[o][l] = w[d.head_of(c * W + l) * ss + o];
}

template <class T>
void conv_forward(const T* q, const T* k, const T* v, const T* w, T* y, T* L, T* r,
                  const ConvDims& d) {
  constexpr int W = Simd<T>::W;
  using V = Vec<T>;
  const int64_t HW = d.H * d.Wd, nc = lane_chunks(d.C, W), rr = d.r();
  if (HW == 0) return;
  parallel_for(0, d.B * nc, 1, [&](int64_t i0, int64_t i1) {
    std::vector<V> kx, wl;
    Grid<T> grid{d.H, d.Wd, rr, {}, {}, {}, {}};
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nc, c = i % nc, o = b * HW * d.C + c * W;
      const int n = lanes(d.C, c, W);
      gather_chunk(k, w, d, b, c, n, kx, wl);
      const V one = splat<T>(1);
      grid.build([&](int64_t p) { return std::tuple{kx[p], load(v + o + p * d.C, n), one}; });
      for (int64_t py = 0; py < d.H; ++py)
        for (int64_t px = 0; px < d.Wd; ++px) {
          const Acc<T> f = grid.far(py, px);
          const int64_t y0 = std::max<int64_t>(0, py - rr), y1 = std::min(d.H - 1, py + rr);
          const int64_t x0 = std::max<int64_t>(0, px - rr), x1 = std::min(d.Wd - 1, px + rr);
          V m = f.m;  // pass 1: the largest exponent
          for (int64_t yy = y0; yy <= y1; ++yy)
            for (int64_t xx = x0; xx <= x1; ++xx)
              m = vmax(m, kx[yy * d.Wd + xx] + wl[(yy - py + rr) * d.s + (xx - px + rr)]);
          const V ef = vexp(f.m - m);  // pass 2: every term relative to m
          V A = f.a * ef, Bs = f.b * ef;
          for (int64_t yy = y0; yy <= y1; ++yy)
            for (int64_t xx = x0; xx <= x1; ++xx) {
              const int64_t p2 = yy * d.Wd + xx;
              const V e = vexp(kx[p2] + wl[(yy - py + rr) * d.s + (xx - px + rr)] - m);
              A += e * load(v + o + p2 * d.C, n);
              Bs += e;
            }
          const int64_t e = o + (py * d.Wd + px) * d.C;
          store_row(Acc<T>{m, A, Bs}, q, y, L, r, e, n);
        }
    }
  });
}

// dkc: per-channel key gradient [B, H, W, C] (k with C channels: dk itself); dw may be null.
template <class T>
void conv_backward(const T* k, const T* v, const T* w, const T* L, const T* r, const T* gr, T* dkc,
                   T* dv, T* dw, const ConvDims& d) {
  constexpr int W = Simd<T>::W;
  using V = Vec<T>;
  const int64_t HW = d.H * d.Wd, nc = lane_chunks(d.C, W), rr = d.r(), ss = d.s * d.s,
                nw = d.heads * ss;
  const int64_t ntasks = HW == 0 ? 0 : d.B * nc;  // an empty image: dv, dk empty, dw = 0
  std::vector<std::vector<T>> part(
      static_cast<size_t>(std::min<int64_t>(ntasks, std::max(1, num_threads()))));
  const int64_t nslots = parallel_slots(ntasks, [&](int64_t slot, int64_t i0, int64_t i1) {
    std::vector<V> kx, wl, dwacc(static_cast<size_t>(ss));
    Grid<T> grid{d.H, d.Wd, rr, {}, {}, {}, {}};
    part[slot].assign(static_cast<size_t>(nw), T(0));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nc, c = i % nc, o = b * HW * d.C + c * W;
      const int n = lanes(d.C, c, W);
      const auto valid = lane_mask<T>(n);
      gather_chunk(k, w, d, b, c, n, kx, wl);
      grid.build([&](int64_t p) {
        const V g = load(gr + o + p * d.C, n);
        return std::tuple{-load(L + o + p * d.C, n), g, g * load(r + o + p * d.C, n)};
      });
      std::fill(dwacc.begin(), dwacc.end(), V{});
      for (int64_t py = 0; py < d.H; ++py)
        for (int64_t px = 0; px < d.Wd; ++px) {
          const int64_t p = py * d.Wd + px, e = o + p * d.C;
          const V vv = load(v + e, n);
          V dvv{}, dkv{};
          far_grad(kx[p], vv, grid.far(py, px), dvv, dkv);
          // Window targets t = p - (dy, dx) saw this key with weight w[dy + r, dx + r].
          for (int64_t dy = -rr; dy <= rr; ++dy) {
            const int64_t ty = py - dy;
            if (ty < 0 || ty >= d.H) continue;
            for (int64_t dx = -rr; dx <= rr; ++dx) {
              const int64_t tx = px - dx;
              if (tx < 0 || tx >= d.Wd) continue;
              const int64_t et = o + (ty * d.Wd + tx) * d.C, off = (dy + rr) * d.s + (dx + rr);
              V ga = load(gr + et, n) * vexp(kx[p] + wl[off] - load(L + et, n));
              ga = valid ? ga : V{};  // padding lanes may hold 0·inf
              const V ev = ga * (vv - load(r + et, n));
              dvv += ga;
              dkv += ev;
              dwacc[off] += ev;
            }
          }
          store(dv + e, dvv, n);
          store(dkc + e, dkv, n);
        }
      if (dw)
        for (int64_t off = 0; off < ss; ++off)
          for (int l = 0; l < n; ++l) part[slot][d.head_of(c * W + l) * ss + off] += dwacc[off][l];
    }
  });
  if (!dw) return;
  std::fill(dw, dw + nw, T(0));
  for (int64_t sl = 0; sl < nslots; ++sl)
    for (int64_t j = 0; j < nw; ++j) dw[j] += part[sl][j];
}

// dk [B, H, W, heads] = per-channel dkc summed over the channels of each head.
template <class T>
void sum_heads(const T* dkc, T* dk, const ConvDims& d) {
  const int64_t hc = d.C / d.heads;
  parallel_for(0, d.B * d.H * d.Wd, 1024, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t h = 0; h < d.heads; ++h) {
        T s = 0;
        for (int64_t j = 0; j < hc; ++j) s += dkc[p * d.C + h * hc + j];
        dk[p * d.heads + h] = s;
      }
  });
}

}  // namespace

Tensor aft_conv(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w, int64_t heads) {
  const char* op = "aft_conv";
  check_float_pair(op, q, k);
  check_float_pair(op, q, v);
  check_defined(op, w, "w");
  check_float_pair(op, q, w);
  AFT_CHECK(q.ndim() == 4, "aft_conv: q must be an image [B, H, W, C], got {}", q.shape());
  AFT_CHECK(v.shape() == q.shape(),
            "aft_conv: q and v must have one shape [B, H, W, C], got q {}, v {}", q.shape(),
            v.shape());
  const int64_t C = q.size(3);
  AFT_CHECK(heads >= 1 && C % heads == 0,
            "aft_conv: heads ({}) must be >= 1 and divide the channels C = {}", heads, C);
  const Shape kh{q.size(0), q.size(1), q.size(2), heads}, kc{q.size(0), q.size(1), q.size(2), C};
  AFT_CHECK(k.shape() == kh || k.shape() == kc,
            "aft_conv: k must be {} (one key per head) or {} (one per channel), got {}", kh, kc,
            k.shape());
  AFT_CHECK(w.ndim() == 3 && w.size(0) == heads && w.size(1) == w.size(2) && w.size(1) % 2 == 1,
            "aft_conv: w must be [heads, s, s] with heads = {} and s odd, got {}", heads,
            w.shape());
  const ConvDims d{q.size(0), q.size(1), q.size(2), C, k.size(3), heads, w.size(1)};
  Tensor qc = q.detach().contiguous(), kc_ = k.detach().contiguous(), vc = v.detach().contiguous();
  Tensor wc = w.detach().contiguous();
  const TensorOptions opts(q.dtype(), q.device());
  Tensor y = empty(q.shape(), opts), L = empty(q.shape(), opts), r = empty(q.shape(), opts);
  if (q.is_cuda()) {
    AFT_CUDA_CALL([&] {
      Tensor work = empty({cuda::aft_conv_work_elems(d.B, d.H, d.Wd, d.C, d.s, q.dtype() == kFloat64)}, opts);
      cuda::aft_conv_forward(desc(qc), desc(kc_), desc(vc), desc(wc), desc(y), desc(L), desc(r), desc(work));
    }());
  } else {
    dispatch_float(q.dtype(), op, [&]<class T>() {
      conv_forward<T>(qc.data<T>(), kc_.data<T>(), vc.data<T>(), wc.data<T>(), y.data<T>(),
                      L.data<T>(), r.data<T>(), d);
    });
  }
  record_aft(op, q, k, v, &w, {qc, kc_, vc, wc, L, r}, y, [=](const AftSaved& sv, const Tensor& g, AftWants want) {
    const TensorOptions o(sv.q.dtype(), sv.q.device());
    const bool per_head = d.Kc != d.C;
    AftGrads out{.dq = empty(sv.q.shape(), o)};
    Tensor gr = empty(sv.q.shape(), o);
    if (sv.q.is_cuda()) {
      AFT_CUDA_CALL([&] {
        Tensor work, dkc;
        if (want.kv) {
          out.dk = empty(sv.k.shape(), o), out.dv = empty(sv.q.shape(), o);
          if (per_head) dkc = empty(sv.q.shape(), o);  // per channel, summed over each head
        }
        if (want.w) out.dw = zeros(sv.w.shape(), o);  // (stays 0 for an empty image)
        if (want.any())
          work = empty({cuda::aft_conv_work_elems(d.B, d.H, d.Wd, d.C, d.s, sv.q.dtype() == kFloat64)}, o);
        cuda::aft_conv_backward(desc(sv.q), desc(g), desc_or_null(sv.k), desc_or_null(sv.v), desc_or_null(sv.w),
                                desc_or_null(sv.L), desc(sv.r), desc(gr), desc_or_null(dkc), desc_or_null(work),
                                desc(out.dq), desc_or_null(out.dk), desc_or_null(out.dv), desc_or_null(out.dw));
      }());
      return out;
    }
    dispatch_float(sv.q.dtype(), op, [&]<class T>() {
      gate_backward<T>(sv.q.data<T>(), g.data<T>(), sv.r.data<T>(), sv.q.numel(), gr.data<T>(),
                       out.dq.data<T>(), [](int64_t i) { return i; });
      if (!want.any()) return;
      Tensor dkc = empty(sv.q.shape(), o);  // per channel
      out.dv = empty(sv.q.shape(), o);
      if (want.w) out.dw = empty(sv.w.shape(), o);
      conv_backward<T>(sv.k.data<T>(), sv.v.data<T>(), sv.w.data<T>(), sv.L.data<T>(), sv.r.data<T>(),
                       gr.data<T>(), dkc.data<T>(), out.dv.data<T>(), want.w ? out.dw.data<T>() : nullptr, d);
      if (!per_head) {
        out.dk = dkc;
        return;
      }
      out.dk = empty(sv.k.shape(), o);
      sum_heads<T>(dkc.data<T>(), out.dk.data<T>(), d);
    });
    return out;
  });
  return y;
}

}  // namespace aft
