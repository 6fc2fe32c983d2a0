// ops/aft_common.h: what the four AFT operators (ops/aft_full.cpp, aft_local.cpp, aft_simple.cpp,
// aft_conv.cpp) share on the CPU: argument checks, the forward/backward scaffold, SIMD helpers
// and the vector policy under which they run the scalar engine of core/math/aft.h (the stable
// running sum Acc, the gate, far_grad; its header gives the notation). docs/aft.md explains the
// math.
//
// SIMD: kernels work on `chunks` of Simd<T>::W adjacent channels (8 floats or 4 doubles, one
// 32-byte vector; channels are the contiguous dim of [B, T, D]). V is a GCC vector type, so
// `a + b`, `a * b`, `a > b ? a : b` are lane-wise; on a CPU without AVX the compiler splits it
// in two SSE halves. A chunk at the end of D may be partial: load()/store() with a lane count
// fill the missing lanes with 0 and never touch memory past D.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/tensor.h"
#include "autograd/tape.h"
#include "core/math/aft.h"
#include "core/math/elementwise.h"
#include "ops/op_utils.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors passed by value without -mavx

namespace aft::aftk {

// ---------------------------------------------------------------- SIMD helpers

template <class T>
struct Simd;
template <>
struct Simd<float> {
  static constexpr int W = 8;
  typedef float V __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};
template <>
struct Simd<double> {
  static constexpr int W = 4;
  typedef double V __attribute__((vector_size(32)));
  typedef int64_t I __attribute__((vector_size(32)));
};
template <class T>
using Vec = typename Simd<T>::V;

template <class T>
inline Vec<T> splat(T x) {
  return Vec<T>{} + x;
}
// Full vector from p[0..W).
template <class T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// n lanes from p[0..n), the others 0.
template <class T>
inline Vec<T> load(const T* p, int n) {
  if (n == Simd<T>::W) return load(p);
  Vec<T> v{};
  for (int i = 0; i < n; ++i) v[i] = p[i];  // (a variable-size memcpy would be a libc call)
  return v;
}
template <class T>
inline void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
inline void store(T* p, Vec<T> v, int n) {
  if (n == Simd<T>::W) return store(p, v);
  for (int i = 0; i < n; ++i) p[i] = v[i];
}
// The lane type and count of a vector type V.
template <class V>
using LaneOf = std::remove_cvref_t<decltype(V{}[0])>;
template <class V>
inline constexpr int kLanes = static_cast<int>(sizeof(V) / sizeof(LaneOf<V>));

// Lanes [0, n) set (all bits), the others 0: `valid ? x : V{}` zeroes the padding lanes of a
// partial chunk before they are summed across lanes.
template <class T>
inline typename Simd<T>::I lane_mask(int n) {
  typename Simd<T>::I m{};
  for (int i = 0; i < n; ++i) m[i] = -1;
  return m;
}

template <class V>
inline V vmax(V a, V b) {
  return a > b ? a : b;
}
template <class V>
inline V vabs(V a) {
  return a < 0 ? -a : a;
}
template <class V>
inline LaneOf<V> hsum(V v) {
  LaneOf<V> s = 0;
  for (int i = 0; i < kLanes<V>; ++i) s += v[i];
  return s;
}
template <class V>
inline LaneOf<V> hmax(V v) {
  LaneOf<V> s = v[0];
  for (int i = 1; i < kLanes<V>; ++i) s = std::max(s, v[i]);
  return s;
}

// e^x lane-wise. float: fastm::exp_poly, the body of the scalar loops' fast_exp (Cephes, 2 ulp;
// below -87.5 flushed to 0: every AFT kernel subtracts a maximum before exp, so such terms are
// below 1e-38 of the largest one and do not change a sum). double: std::exp per lane (the
// float64 path is the reference; accuracy first).
inline Vec<float> vexp(Vec<float> x) { return fastm::exp_poly(x); }
inline Vec<double> vexp(Vec<double> x) {
  for (int i = 0; i < 4; ++i) x[i] = std::exp(x[i]);
  return x;
}
template <class V>
inline V vlog(V x) {
  for (int i = 0; i < kLanes<V>; ++i) x[i] = std::log(x[i]);
  return x;
}
// The policies under which the CPU runs core/math/aft.h: VecMath on a chunk of W channels,
// HostMath on one value (its float exp is fast_exp, which the compiler vectorises in loops).
template <class Lane>
struct VecMath {
  using T = Lane;
  using V = Vec<Lane>;
  static V exp(V x) { return vexp(x); }
  static V log(V x) { return vlog(x); }
  static V abs(V x) { return vabs(x); }
  static V splat(T x) { return aftk::splat<T>(x); }
};
template <class Lane>
struct HostMath : aft_math::StdMath<Lane> {
  static Lane exp(Lane x) { return emath::exp_(x); }
};

using aft_math::kEmpty;
template <class T>
using Acc = aft_math::Acc<VecMath<T>>;  // per lane of a chunk of channels

// ---------------------------------------------------------------- shapes and checks

struct Dims {
  int64_t B = 0, T = 0, D = 0;
};

// q, k, v: defined, float, same dtype and device, 3-d, one shape [B, T, D].
inline Dims check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  check_float_pair(op, q, k);
  check_float_pair(op, q, v);
  AFT_CHECK(q.ndim() == 3, "{}: q must be [B, T, D], got {}", op, q.shape());
  AFT_CHECK(k.shape() == q.shape() && v.shape() == q.shape(),
            "{}: q, k, v must have one shape [B, T, D], got q {}, k {}, v {}", op, q.shape(),
            k.shape(), v.shape());
  return {q.size(0), q.size(1), q.size(2)};
}

// w: defined, float, dtype and device of q, shape `want` (what it holds is named in `what`).
inline void check_bias(const char* op, const Tensor& w, const Tensor& q, const Shape& want,
                       const char* what) {
  check_defined(op, w, "w");
  check_float_pair(op, q, w);
  AFT_CHECK(w.shape() == want, "{}: w must be {} {}, got {}", op, what, want, w.shape());
}

// ---------------------------------------------------------------- the op scaffold

// What an AFT op's forward made and its backward reads: q, k, v, w contiguous (w undefined for
// aft_simple), and the saved row statistics L (log-sum-exp) and r (normalised sum). In a backward
// k, v, w, L are undefined when only dq is wanted (dq needs q and r alone).
struct AftSaved {
  Tensor q, k, v, w, L, r;
};
// Which gradients beyond dq the backward must produce: dk and dv (together), dw.
struct AftWants {
  bool kv = false, w = false;
  bool any() const { return kv || w; }
};
struct AftGrads {
  Tensor dq, dk, dv, dw;
};
using AftBackward = std::function<AftGrads(const AftSaved& saved, const Tensor& g, AftWants want)>;

// Records the backward of an AFT op (inputs q, k, v and, unless w is null, w; output y) on the
// tape when any input needs a gradient: saves what `fwd` holds that the wanted gradients need,
// and calls `backward` with them and the contiguous upstream gradient.
inline void record_aft(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* w,
                       const AftSaved& fwd, const Tensor& y, AftBackward backward) {
  const Tensor none;
  const Tensor& wt = w ? *w : none;
  if (!autograd::needs_grad({&q, &k, &v, &wt})) return;
  const AftWants want{autograd::needs_grad(k, v), w && autograd::needs_grad(*w)};
  autograd::SavedTensor sq(fwd.q), sr(fwd.r), sk, sv, sw, sL;
  if (want.any()) {
    sk = fwd.k, sv = fwd.v, sL = fwd.L;
    if (w) sw = fwd.w;
  }
  const bool has_w = w != nullptr;
  autograd::TensorList inputs{q, k, v};
  if (has_w) inputs.push_back(*w);
  autograd::record(op, inputs, {y}, [=](const autograd::TensorList& g) {
    const Tensor undef;
    auto get = [&](const autograd::SavedTensor& t) { return t.defined() ? t.get() : undef; };
    AftGrads d = backward(AftSaved{sq.get(), get(sk), get(sv), get(sw), get(sL), sr.get()}, g[0].contiguous(), want);
    autograd::TensorList out{d.dq, d.dk, d.dv};
    if (has_w) out.push_back(d.dw);
    return out;
  });
}

// The common start of the CPU backward of aft_full and aft_local (q, r, g of one shape): gr and dq
// through the gate, then, when any gradient beyond dq is wanted, dk and dv (computed together)
// and dw allocated. Returns whether the key/bias gradients are to be computed.
template <class T>
bool cpu_gate_and_alloc(const AftSaved& sv, const Tensor& g, const Tensor& gr, AftGrads& d, AftWants want) {
  gate_backward<T>(sv.q.data<T>(), g.data<T>(), sv.r.data<T>(), sv.q.numel(), gr.data<T>(), d.dq.data<T>(),
                   [](int64_t i) { return i; });
  if (!want.any()) return false;
  const TensorOptions o(sv.q.dtype(), sv.q.device());
  if (!d.dk.defined()) d.dk = empty(sv.q.shape(), o), d.dv = empty(sv.q.shape(), o);
  if (want.w) d.dw = empty(sv.w.shape(), o);
  return true;
}

// ---------------------------------------------------------------- work partition

// Chunks of W channels that cover D, and the lanes chunk c fills.
inline int64_t lane_chunks(int64_t D, int W) { return (D + W - 1) / W; }
inline int lanes(int64_t D, int64_t c, int W) {
  return static_cast<int>(std::min<int64_t>(W, D - c * W));
}

// Runs fn(slot, task_begin, task_end) on the pool over [0, ntasks) split into at most
// num_threads() contiguous slots; returns the slot count. A kernel that reduces over tasks (dw
// sums over batch and channels) gives each slot its own partial buffer and adds the buffers in
// slot order afterwards: the result depends on the thread count only, never on timing.
inline int64_t parallel_slots(int64_t ntasks,
                              const std::function<void(int64_t, int64_t, int64_t)>& fn) {
  if (ntasks <= 0) return 0;
  int64_t nslots = std::min<int64_t>(ntasks, std::max(1, num_threads()));
  parallel_for(0, nslots, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) fn(s, s * ntasks / nslots, (s + 1) * ntasks / nslots);
  });
  return nslots;
}

// Causal kernels do more work for late rows: task i of n runs index zigzag(i), so that each
// contiguous chunk of parallel_for gets early and late tiles alike (0, n-1, 1, n-2, ...).
inline int64_t zigzag(int64_t i, int64_t n) { return i % 2 == 0 ? i / 2 : n - 1 - i / 2; }

// ---------------------------------------------------------------- shared backward pieces

// The gate (aft_math::gate_grad), elementwise over n = B·T·D values (or B·D for non-causal
// aft_simple's r): gr = g · sigmoid(q), dq = g · r · sigmoid'(q). r may be broadcast:
// r_index(i) gives the element of r for element i.
template <class T, class RIndex>
void gate_backward(const T* q, const T* g, const T* r, int64_t n, T* gr, T* dq, RIndex r_index) {
  parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) aft_math::gate_grad<HostMath<T>>(q[i], g[i], r[r_index(i)], gr[i], dq[i]);
  });
}

// Forward epilogue of a chunk of n lanes at e: y, L, r from the row's sum (aft_math::finish_row).
template <class T>
inline void store_row(const Acc<T>& acc, const T* q, T* y, T* L, T* r, int64_t e, int n) {
  Vec<T> yv, Lv, rv;
  aft_math::finish_row<VecMath<T>>(acc, load(q + e, n), yv, Lv, rv);
  store(y + e, yv, n);
  store(L + e, Lv, n);
  store(r + e, rv, n);
}

template <class T>
inline void far_grad(Vec<T> k, Vec<T> v, const Acc<T>& F, Vec<T>& dv, Vec<T>& dk) {
  aft_math::far_grad<VecMath<T>>(k, v, F, dv, dk);
}

// ---------------------------------------------------------------- separable tiles

// The tiled "separable shift" of AFT-full (ops/aft_full.cpp explains it), shared with aft_local's
// band: a (row t, key tile) term e^{k + w} is computed as e^{w - Mw}·e^{k - Mk} times the shift
// e^{Mk + Mw}, and the safe/exact rule (tile_shift) says when that cannot lose the tile's largest
// term to underflow (else the caller sums the tile exactly, one exp per term).

template <class T>
constexpr T kSafeGap = aft_math::safe_gap<T>();

// The bias side of tile (row t, keys [j0, jend)): Mw = max w, cw = its index, E = e^{w - Mw}
// (E[j] for t' = j0 + j; 0 past jend, so causal rows can share the key loop of their tile).
template <class T>
void bias_row(const T* wrow, int64_t j0, int64_t jend, int64_t tj, T* E, T* Mw, int64_t* cw) {
  constexpr int W = Simd<T>::W;
  T m = wrow[j0];
  int64_t i = j0;
  if (jend - j0 >= W) {
    Vec<T> mv = load(wrow + j0);
    for (i = j0 + W; i + W <= jend; i += W) mv = vmax(mv, load(wrow + i));
    m = hmax(mv);
  }
  for (; i < jend; ++i) m = std::max(m, wrow[i]);
  int64_t am = j0;
  while (wrow[am] != m && am + 1 < jend) ++am;  // the first maximum
  *Mw = m, *cw = am;
  for (int64_t j = j0; j < jend; j += W) {
    const int n = static_cast<int>(std::min<int64_t>(W, jend - j));
    store(E + (j - j0), vexp(load(wrow + j, n) - m), n);
  }
  std::fill(E + (jend - j0), E + tj, T(0));
}

// Key side of tile [j0, j1) for batch b, chunk c: Mk = max k, ak = its index, per lane.
template <class T>
void key_max(const T* k, int64_t j0, int64_t j1, int64_t D, int64_t c, int n, Vec<T>* Mk,
             int64_t* ak) {
  constexpr int W = Simd<T>::W;
  Vec<T> m = load(k + j0 * D + c * W, n);
  for (int l = 0; l < W; ++l) ak[l] = j0;
  for (int64_t j = j0 + 1; j < j1; ++j) {
    Vec<T> x = load(k + j * D + c * W, n);
    for (int l = 0; l < n; ++l)
      if (x[l] > m[l]) m[l] = x[l], ak[l] = j;
  }
  *Mk = m;
}

// The shift LB (a lower bound of max over keys [jbeg, jend) of k + w[t, .]) and whether the
// separable tile is safe for every lane: gap = Mk + Mw - LB <= kSafeGap. Mk, ak: the key tile's
// max of k and its index (the tile may extend past [jbeg, jend): Mk is then only an upper bound,
// which keeps the rule valid); Mw, cw: the max of w over [jbeg, jend) and its index.
template <class T>
bool tile_shift(const T* k, const T* wrow, int64_t D, int64_t c, int n, Vec<T> Mk,
                const int64_t* ak, T Mw, int64_t cw, int64_t jbeg, int64_t jend, Vec<T>* LB) {
  constexpr int W = Simd<T>::W;
  Vec<T> lb = Mw + load(k + cw * D + c * W, n);   // the key of largest w
  const auto bad = (Mk + Mw - lb) > kSafeGap<T>;  // padding lanes: gap 0
  bool safe = true;
  for (int l = 0; l < W; ++l) safe = safe && bad[l] == 0;
  if (!safe) {  // second candidate: the key of largest k (if the row sees it)
    safe = true;
    for (int l = 0; l < n; ++l) {
      if (ak[l] >= jbeg && ak[l] < jend) lb[l] = std::max(lb[l], Mk[l] + wrow[ak[l]]);
      safe = safe && Mk[l] + Mw - lb[l] <= kSafeGap<T>;
    }
  }
  *LB = lb;
  return safe;
}

}  // namespace aft::aftk

#pragma GCC diagnostic pop
