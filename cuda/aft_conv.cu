// cuda/aft_conv.cu: AFT-conv on the GPU, forward and backward, with the formulas and the stable
// form of ops/aft_conv.cpp. q, v, y [B, H, W, C] (channels last); k [B, H, W, heads] (a key per
// head) or [B, H, W, C]; w [heads, s, s], s = 2r + 1; channel c belongs to head c / (C/heads).
//
//   y[p] = sigmoid(q[p]) · (conv(e^k·v, e^w - 1) + Σ e^k v) / (conv(e^k, e^w - 1) + Σ e^k)
//        = sigmoid(q[p]) · Σ_p' e^{k[p'] + w'(p, p')} v[p'] / Σ_p' e^{k[p'] + w'(p, p')}
//   (w' = w[h, p' - p] inside the s × s window, 0 outside)
//
// The (e^w - 1) form subtracts (it cancels catastrophically when the window holds the dominant
// key and w is very negative there), so, as on the CPU, the keys outside the window of pixel
// (y, x) are summed separately, as stable running sums (Acc, core/math/aft.h), and the window exactly:
//   above  rows < y - r                              Above[y - r]      (prefix over rows)
//   below  rows > y + r                              Below[y + r + 1]  (suffix over rows)
//   left   rows y-r..y+r, columns <= x - r - 1       Left(x)
//   right  rows y-r..y+r, columns >= x + r + 1       Right(x)
//   window rows y-r..y+r, columns x-r..x+r           e^{k + w - m}, m the pixel's largest exponent
// Left and right are sums over columns of CW(y, x') = Σ_{|y' - y| <= r} e^{k[y', x']}·(v, 1), the
// window's rows at one column: a 1-D prefix / suffix along the row (the CPU merges 2s + 2
// per-row pieces instead; same sums, fewer merges here). Kernels (thread mapping: 32 channels of
// a warp side by side, so every load of a pixel's channels is coalesced):
//   1. summaries: per (b, y, chunk j of XC columns, c): the CW sums of the columns of chunk j of
//      the grid shifted left by r (for Left) and right by r (for Right), and the plain row sum
//      of chunk j (for Above/Below);
//   2. scans (cuda/aft_common.cuh): exclusive prefix of the left-grid chunks along x (LeftAt[j]
//      = Σ_{x' < j·XC - r} CW), exclusive suffix of the right-grid chunks (RightAt[j] =
//      Σ_{x' >= j·XC + r} CW), row totals, then prefix/suffix of the row totals over y;
//   3. apply: one thread per (b, y, chunk, c) walks its XC pixels right to left (Right(x) from
//      RightAt[j + 1], one CW column pushed per step, kept in shared memory), then left to right
//      (Left(x) from LeftAt[j]); per pixel it merges the four pieces, sums the window exactly (max
//      first, then e^{k + w - m}), and writes y, L, r: the gate and the division fused.
// Work per pixel and channel: s² window exps, about 4(2r + 1) + 5 exps for the sums; memory
// for the sums about (5/XC)·3 values per element (XC = 16 in float32). No size limit beyond
// memory (images of any H × W, any s).
// Backward (gr = g·sigmoid(q), stored by the gate kernel: every kernel below reads it several
// times; a = e^{k + w' - L} <= 1): the window is symmetric, so the targets outside the window of
// key p' are the same four pieces, now of sums over targets with exponent -L (a = gr, b = gr·r):
// dv, dk from aftk::far_grad plus the window targets summed exactly; dk per head = the sum of its
// channels' dk (one thread per (pixel, head), in order). dw[h, o] = Σ_{b, p, c∈h} gr a (v - r):
// per offset o a block per (part of the pixels, 32 channels) sums its terms (8 lanes added in
// order), a last kernel adds the parts and the head's channels in order: no atomics anywhere.
#include "cuda/aft.h"
#include "cuda/aft_common.cuh"

namespace aft::cuda {

namespace {

using aftk::Acc;

constexpr int kRowsPerBlock = 4;  // (b, y, chunk) items per block of the summary / apply kernels

template <class T>
constexpr int xchunk() {  // pixels per chunk along x (the apply kernel keeps XC states per thread)
  return sizeof(T) == 4 ? 16 : 8;
}

struct ConvGeom {
  int64_t B, H, Wd, C, Kc, heads, s, nj;  // nj: chunks of XC columns per row
  __host__ __device__ int64_t r() const { return (s - 1) / 2; }
  __host__ __device__ int64_t head_of(int64_t c) const { return c / (C / heads); }
  __host__ __device__ int64_t key_of(int64_t c) const { return Kc == C ? c : head_of(c); }
  __host__ __device__ int64_t items() const { return B * H * nj; }
};

// Forward terms: key pixel p (linear over b, y, x) of channel c contributes e^{k}·(v, 1).
template <class T>
struct ConvKeyTerm {
  const T* k;
  const T* v;
  ConvGeom g;
  __device__ void operator()(int64_t p, int64_t c, T& s, T& x, T& y) const {
    s = k[p * g.Kc + g.key_of(c)];
    x = v[p * g.C + c];
    y = T(1);
  }
};

// Backward terms: target pixel p contributes e^{-L}·(gr, gr·r) (aftk::TargetTerm, gr given).
template <class T>
struct ConvTargetTerm {
  aftk::TargetTerm<T> term;  // {L, r, gr, nullptr}
  ConvGeom g;
  __device__ void operator()(int64_t p, int64_t c, T& s, T& x, T& y) const { term(p * g.C + c, s, x, y); }
};

// The work item of a thread of the summary and apply kernels: image b, pixel row y, chunk j of
// XC columns, channel c. grid (ceil(items / kRowsPerBlock), ceil(C / 32)), block (32, kRowsPerBlock).
struct ConvItem {
  int64_t item, b, y, j, c;
  bool live;  // false: past the last item or channel
};
__device__ inline ConvItem conv_item(const ConvGeom& g) {
  ConvItem it;
  it.item = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
  it.c = static_cast<int64_t>(blockIdx.y) * 32 + threadIdx.x;
  it.live = it.item < g.items() && it.c < g.C;
  it.j = it.item % g.nj, it.y = (it.item / g.nj) % g.H, it.b = it.item / (g.nj * g.H);
  return it;
}

// CW: pushes the terms of column x' of the rows y - r .. y + r (clipped) of image b.
template <class T, class Term>
__device__ void push_column(const Term& term, const ConvGeom& g, int64_t b, int64_t y, int64_t xc, int64_t c,
                            Acc<T>& acc) {
  const int64_t r = g.r(), y0 = y - r < 0 ? 0 : y - r, y1 = y + r < g.H - 1 ? y + r : g.H - 1;
  for (int64_t yy = y0; yy <= y1; ++yy) {
    T s, x, w;
    term((b * g.H + yy) * g.Wd + xc, c, s, x, w);
    acc.push(s, x, w);
  }
}

// 1. Per (b, y, chunk j, c): SP = CW over columns [j·XC - r, (j+1)·XC - r), SS = CW over
// [j·XC + r, (j+1)·XC + r), SR = row y over [j·XC, (j+1)·XC) (all clipped to the image).
template <class T, class Term>
__global__ void conv_summary_kernel(Term term, ConvGeom g, Acc<T>* SP, Acc<T>* SS, Acc<T>* SR) {
  constexpr int XC = xchunk<T>();
  const ConvItem it = conv_item(g);
  if (!it.live) return;
  const int64_t item = it.item, j = it.j, y = it.y, b = it.b, c = it.c, r = g.r();
  auto clip = [&](int64_t x) { return x < 0 ? int64_t{0} : x > g.Wd ? g.Wd : x; };
  Acc<T> sp = Acc<T>::empty(), ss = sp, sr = sp;
  for (int64_t x = clip(j * XC - r); x < clip(j * XC + XC - r); ++x) push_column<T>(term, g, b, y, x, c, sp);
  for (int64_t x = clip(j * XC + r); x < clip(j * XC + XC + r); ++x) push_column<T>(term, g, b, y, x, c, ss);
  for (int64_t x = clip(j * XC); x < clip(j * XC + XC); ++x) {
    T s, xv, w;
    term((b * g.H + y) * g.Wd + x, c, s, xv, w);
    sr.push(s, xv, w);
  }
  const int64_t o = item * g.C + c;
  SP[o] = sp, SS[o] = ss, SR[o] = sr;
}

// The scanned sums (kernel 2), laid out in the work buffer.
template <class T>
struct ConvSums {
  Acc<T>*SP, *SS, *SR, *left, *right, *rowtot, *above, *below;
  ConvSums(T* work, const ConvGeom& g) {
    const int64_t n1 = g.items() * g.C, n2 = g.B * g.H * (g.nj + 1) * g.C;
    SP = reinterpret_cast<Acc<T>*>(work);
    SS = SP + n1, SR = SS + n1, left = SR + n1, right = left + n2, rowtot = right + n2;
    above = rowtot + g.B * g.H * g.C, below = above + g.B * (g.H + 1) * g.C;
  }
  static int64_t elems(const ConvGeom& g) {
    return 3 * (3 * g.items() * g.C + 2 * g.B * g.H * (g.nj + 1) * g.C + g.B * g.H * g.C + 2 * g.B * (g.H + 1) * g.C);
  }
};

// Kernels 1 and 2 for the terms of one pass.
template <class T, class Term>
void build_sums(const Term& term, const ConvGeom& g, const ConvSums<T>& cs) {
  AFT_LAUNCH((conv_summary_kernel<T, Term>),
             dim3(static_cast<unsigned>((g.items() + kRowsPerBlock - 1) / kRowsPerBlock), blocks_for(g.C, 32)),
             dim3(32, kRowsPerBlock), 0, term, g, cs.SP, cs.SS, cs.SR);
  aftk::launch_chunk_scan<T>(cs.SP, cs.left, nullptr, nullptr, g.B * g.H, g.nj, g.C);
  aftk::launch_chunk_scan<T>(cs.SS, nullptr, cs.right, nullptr, g.B * g.H, g.nj, g.C);
  aftk::launch_chunk_scan<T>(cs.SR, nullptr, nullptr, cs.rowtot, g.B * g.H, g.nj, g.C);
  aftk::launch_chunk_scan<T>(cs.rowtot, cs.above, cs.below, nullptr, g.B, g.H, g.C);
}

// 3. The walk of one (b, y, chunk, c) (the file comment): calls pixel(x, far) with the sum of
// everything outside the window of (y, x), for x = xa .. xb - 1. right_: the block's shared
// array of kRowsPerBlock · XC · 32 states (the thread's Right(x), x in the chunk).
template <class T, class Term, class Pixel>
__device__ void walk_chunk(const Term& term, const ConvGeom& g, const ConvSums<T>& cs, const ConvItem& it,
                           Acc<T>* right_, const Pixel& pixel) {
  constexpr int XC = xchunk<T>();
  const int64_t b = it.b, y = it.y, j = it.j, c = it.c;
  Acc<T>* right = right_ + threadIdx.y * XC * 32 + threadIdx.x;
  const int64_t r = g.r(), xa = j * XC, xb = xa + XC < g.Wd ? xa + XC : g.Wd, row = b * g.H + y;
  Acc<T> R = cs.right[(row * (g.nj + 1) + j + 1) * g.C + c];  // columns >= xa + XC + r
  for (int64_t x = xb - 1; x >= xa; --x) {
    right[(x - xa) * 32] = R;                             // Right(x): columns >= x + r + 1
    if (x > xa && x + r < g.Wd) push_column<T>(term, g, b, y, x + r, c, R);
  }
  Acc<T> vert = cs.above[(b * (g.H + 1) + (y - r > 0 ? y - r : 0)) * g.C + c];
  vert.merge(cs.below[(b * (g.H + 1) + (y + r + 1 < g.H ? y + r + 1 : g.H)) * g.C + c]);
  Acc<T> Lf = cs.left[(row * (g.nj + 1) + j) * g.C + c];  // Left(xa): columns < xa - r
  for (int64_t x = xa; x < xb; ++x) {
    Acc<T> far = vert;
    far.merge(Lf);
    far.merge(right[(x - xa) * 32]);
    pixel(x, far);
    if (x - r >= 0) push_column<T>(term, g, b, y, x - r, c, Lf);  // Left(x + 1)
  }
}

template <class T>
__global__ void conv_forward_kernel(const T* q, const T* k, const T* v, const T* w, ConvGeom g, ConvSums<T> cs, T* y,
                                    T* L, T* rr) {
  AFT_SHARED(Acc<T>, right_, kRowsPerBlock * xchunk<T>() * 32);
  const ConvItem it = conv_item(g);
  if (!it.live) return;
  const int64_t py = it.y, b = it.b, c = it.c, r = g.r(), s = g.s, kc = g.key_of(c);
  const T* wh = w + g.head_of(c) * s * s;
  const int64_t y0 = py - r < 0 ? 0 : py - r, y1 = py + r < g.H - 1 ? py + r : g.H - 1;
  walk_chunk<T>(ConvKeyTerm<T>{k, v, g}, g, cs, it, right_,
                [&](int64_t px, const Acc<T>& far) {
                  // The window, exactly: m = the largest exponent of the pixel, then e^{s - m}.
                  const int64_t x0 = px - r < 0 ? 0 : px - r, x1 = px + r < g.Wd - 1 ? px + r : g.Wd - 1;
                  T m = far.m;
                  for (int64_t yy = y0; yy <= y1; ++yy)
                    for (int64_t xx = x0; xx <= x1; ++xx) {
                      const T sk = k[((b * g.H + yy) * g.Wd + xx) * g.Kc + kc] + wh[(yy - py + r) * s + (xx - px + r)];
                      m = sk > m ? sk : m;
                    }
                  const T ef = std::exp(far.m - m);
                  Acc<T> acc{m, far.a * ef, far.b * ef};
                  for (int64_t yy = y0; yy <= y1; ++yy)
                    for (int64_t xx = x0; xx <= x1; ++xx) {
                      const int64_t p2 = (b * g.H + yy) * g.Wd + xx;
                      const T e = std::exp(k[p2 * g.Kc + kc] + wh[(yy - py + r) * s + (xx - px + r)] - m);
                      acc.a += e * v[p2 * g.C + c];
                      acc.b += e;
                    }
                  const int64_t o = ((b * g.H + py) * g.Wd + px) * g.C + c;
                  aftk::finish_row(acc, q[o], &y[o], &L[o], &rr[o]);
                });
}

// dv, dkc (per channel) of key pixel (b, y, x) for channel c: far targets from the sums, window
// targets t = p' - (dy, dx) exactly, a = e^{k + w[dy, dx] - L[t]}.
template <class T>
__global__ void conv_backward_kernel(const T* k, const T* v, const T* w, const T* L, const T* rr, const T* gr,
                                     ConvGeom g, ConvSums<T> cs, T* dkc, T* dv) {
  AFT_SHARED(Acc<T>, right_, kRowsPerBlock * xchunk<T>() * 32);
  const ConvItem it = conv_item(g);
  if (!it.live) return;
  const int64_t py = it.y, b = it.b, c = it.c, r = g.r(), s = g.s, kc = g.key_of(c);
  const T* wh = w + g.head_of(c) * s * s;
  walk_chunk<T>(ConvTargetTerm<T>{{L, rr, gr, nullptr}, g}, g, cs, it, right_,
                [&](int64_t px, const Acc<T>& far) {
                  const int64_t p = (b * g.H + py) * g.Wd + px, o = p * g.C + c;
                  const T kv = k[p * g.Kc + kc], vv = v[o];
                  T dvv = 0, dkv = 0;
                  aftk::far_grad(kv, vv, far, dvv, dkv);
                  for (int64_t dy = -r; dy <= r; ++dy) {
                    const int64_t ty = py - dy;
                    if (ty < 0 || ty >= g.H) continue;
                    for (int64_t dx = -r; dx <= r; ++dx) {
                      const int64_t tx = px - dx;
                      if (tx < 0 || tx >= g.Wd) continue;
                      const int64_t et = ((b * g.H + ty) * g.Wd + tx) * g.C + c;
                      const T ga = gr[et] * std::exp(kv + wh[(dy + r) * s + (dx + r)] - L[et]);
                      dvv += ga;
                      dkv += ga * (vv - rr[et]);
                    }
                  }
                  dv[o] = dvv;
                  dkc[o] = dkv;
                });
}

// dk[b, p, h] = Σ_{c in head h} dkc[b, p, c]  (channels in order).
template <class T>
__global__ void conv_sum_heads_kernel(const T* dkc, T* dk, int64_t n, int64_t C, int64_t heads) {
  const int64_t hc = C / heads;
  AFT_KERNEL_LOOP(i, n) {
    const int64_t p = i / heads, h = i % heads;
    T s = 0;
    for (int64_t j = 0; j < hc; ++j) s += dkc[p * C + h * hc + j];
    dk[i] = s;
  }
}

// Parts of the dw sums over the B·H·W target pixels: about 512 pixels each, at most 64.
int64_t dw_parts(int64_t M) {
  const int64_t p = (M + 511) / 512;
  return p < 1 ? 1 : p > 64 ? 64 : p;
}

// part[o, p, c] = Σ over the target pixels t of part p of gr[t]·a·(v[t + o] - r[t]),
// a = e^{k[t + o] + w[h, o] - L[t]}. grid (s² · P, ceil(C / 32)), block (32, 8 lanes).
template <class T>
__global__ void conv_dw_part_kernel(const T* k, const T* v, const T* w, const T* L, const T* rr, const T* gr,
                                    ConvGeom g, int64_t P, T* part) {
  AFT_SHARED(T, red, 8 * 32);
  const int x = threadIdx.x, l = threadIdx.y;
  const int64_t ss = g.s * g.s, o = blockIdx.x / P, p = blockIdx.x % P, r = g.r();
  const int64_t c = static_cast<int64_t>(blockIdx.y) * 32 + x, dy = o / g.s - r, dx = o % g.s - r;
  const int64_t HW = g.H * g.Wd, M = g.B * HW, per = (M + P - 1) / P, m1 = (p + 1) * per < M ? (p + 1) * per : M;
  T acc = 0;
  if (c < g.C) {
    const T wv = w[g.head_of(c) * ss + o];
    const int64_t kc = g.key_of(c);
    for (int64_t t = p * per + l; t < m1; t += 8) {
      const int64_t b = t / HW, ty = (t % HW) / g.Wd + dy, tx = t % g.Wd + dx;
      if (ty < 0 || ty >= g.H || tx < 0 || tx >= g.Wd) continue;
      const int64_t kp = (b * g.H + ty) * g.Wd + tx, et = t * g.C + c;
      acc += gr[et] * std::exp(k[kp * g.Kc + kc] + wv - L[et]) * (v[kp * g.C + c] - rr[et]);
    }
  }
  red[l * 32 + x] = acc;
  __syncthreads();
  if (l != 0 || c >= g.C) return;
  for (int i = 1; i < 8; ++i) acc += red[i * 32 + x];
  part[(o * P + p) * g.C + c] = acc;
}

// dw[h, o] = Σ_p Σ_{c in head h} part[o, p, c]  (in order).
template <class T>
__global__ void conv_dw_final_kernel(const T* part, T* dw, ConvGeom g, int64_t P) {
  const int64_t ss = g.s * g.s, hc = g.C / g.heads;
  AFT_KERNEL_LOOP(i, g.heads * ss) {
    const int64_t h = i / ss, o = i % ss;
    T s = 0;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t j = 0; j < hc; ++j) s += part[(o * P + p) * g.C + h * hc + j];
    dw[i] = s;
  }
}

template <class T>
ConvGeom geom_of(const TensorDesc& q, const TensorDesc& k, const TensorDesc& w) {
  constexpr int XC = xchunk<T>();
  const int64_t Wd = q.shape[2];
  return {q.shape[0], q.shape[1], Wd, q.shape[3], k.shape[3], w.shape[0], w.shape[1], (Wd + XC - 1) / XC};
}

dim3 apply_grid(const ConvGeom& g) {
  return dim3(static_cast<unsigned>((g.items() + kRowsPerBlock - 1) / kRowsPerBlock), blocks_for(g.C, 32));
}

}  // namespace

// Elements (of the dtype) of the work buffer of aft_conv_forward / _backward: the scanned sums
// and dw's partial sums. f64: the tensors are float64.
int64_t aft_conv_work_elems(int64_t B, int64_t H, int64_t W, int64_t C, int64_t s, bool f64) {
  const int XC = f64 ? xchunk<double>() : xchunk<float>();
  const ConvGeom g{B, H, W, C, C, 1, s, (W + XC - 1) / XC};
  const int64_t sums = f64 ? ConvSums<double>::elems(g) : ConvSums<float>::elems(g);
  return sums + s * s * dw_parts(B * H * W) * C;
}

// q, v, y, L, r contiguous [B, H, W, C]; k [B, H, W, heads or C]; w [heads, s, s].
void aft_conv_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& w,
                      const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, const TensorDesc& work) {
  if (q.numel() == 0) return;
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    const ConvGeom g = geom_of<T>(q, k, w);
    const ConvSums<T> cs(work.ptr<T>(), g);
    build_sums<T>(ConvKeyTerm<T>{k.ptr<const T>(), v.ptr<const T>(), g}, g, cs);
    AFT_LAUNCH(conv_forward_kernel<T>, apply_grid(g), dim3(32, kRowsPerBlock), 0, q.ptr<const T>(), k.ptr<const T>(),
               v.ptr<const T>(), w.ptr<const T>(), g, cs, y.ptr<T>(), L.ptr<T>(), r.ptr<T>());
  });
}

// g the upstream gradient; gr [B, H, W, C] work; dkc [B, H, W, C] work when k has one channel per
// head (else dk itself); dq, dk, dv, dw may be absent (dk and dv come together).
void aft_conv_backward(const TensorDesc& q, const TensorDesc& gy, const TensorDesc& k, const TensorDesc& v,
                       const TensorDesc& w, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                       const TensorDesc& dkc, const TensorDesc& work, const TensorDesc& dq, const TensorDesc& dk,
                       const TensorDesc& dv, const TensorDesc& dw) {
  if (q.numel() == 0) return;
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    aftk::launch_gate_backward<T>(q.ptr<const T>(), gy.ptr<const T>(), r.ptr<const T>(), gr.ptr<T>(), dq.ptr<T>(),
                                  q.numel());
    if (!dk.data && !dw.data) return;
    const ConvGeom g = geom_of<T>(q, k, w);
    const ConvSums<T> cs(work.ptr<T>(), g);
    if (dk.data) {
      build_sums<T>(ConvTargetTerm<T>{{L.ptr<const T>(), r.ptr<const T>(), gr.ptr<const T>(), nullptr}, g}, g, cs);
      T* dkc_ = g.Kc == g.C ? dk.ptr<T>() : dkc.ptr<T>();
      AFT_LAUNCH(conv_backward_kernel<T>, apply_grid(g), dim3(32, kRowsPerBlock), 0, k.ptr<const T>(),
                 v.ptr<const T>(), w.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(), gr.ptr<const T>(), g, cs,
                 dkc_, dv.ptr<T>());
      if (g.Kc != g.C) {
        const int64_t n = g.B * g.H * g.Wd * g.heads;
        AFT_LAUNCH(conv_sum_heads_kernel<T>, loop_blocks(n), kLoopThreads, 0, static_cast<const T*>(dkc_), dk.ptr<T>(),
                   n, g.C, g.heads);
      }
    }
    if (dw.data) {
      const int64_t P = dw_parts(g.B * g.H * g.Wd);
      T* part = work.ptr<T>() + ConvSums<T>::elems(g);
      AFT_LAUNCH(conv_dw_part_kernel<T>, dim3(static_cast<unsigned>(g.s * g.s * P), blocks_for(g.C, 32)), dim3(32, 8),
                 0, k.ptr<const T>(), v.ptr<const T>(), w.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
                 gr.ptr<const T>(), g, P, part);
      AFT_LAUNCH(conv_dw_final_kernel<T>, loop_blocks(g.heads * g.s * g.s), kLoopThreads, 0,
                 static_cast<const T*>(part), dw.ptr<T>(), g, P);
    }
  });
}

}  // namespace aft::cuda
