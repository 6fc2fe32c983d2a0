// ops/aft_common.h: what the four AFT operators (ops/aft_full.cpp, aft_local.cpp, aft_simple.cpp,
// aft_conv.cpp) share: argument checks, small SIMD helpers, and the one numerical primitive
// they are all built on, the *stable running sum* Acc. docs/aft.md explains the math.
//
// Notation (names used in every AFT file). Per batch b and channel d, for a target row t:
//   s[t, t'] = k[t'] + w[t, t']          the exponent of key t' seen from row t
//   L[t]     = log Σ_t' e^{s[t, t']}     log-sum-exp of the row (saved for backward)
//   r[t]     = Σ_t' e^{s - L} v[t']      the normalised weighted average of v (saved)
//   y[t]     = sigmoid(q[t]) · r[t]
// Backward, with g = dLoss/dy, gr = g·sigmoid(q) (gradient at r), a[t, t'] = e^{s[t,t'] - L[t]}:
//   dq[t]     = g · r · sigmoid(q) · sigmoid(-q)
//   dv[t']    = Σ_t gr[t] a[t, t']
//   dk[t']    = Σ_t gr[t] a[t, t'] (v[t'] - r[t])
//   dw[t, t'] = Σ_{b,d} gr[t] a[t, t'] (v[t'] - r[t])
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

// e^x lane-wise. float: Cody-Waite range reduction x = n·ln2 + f, |f| <= ln2/2, a degree-6
// polynomial for e^f (Cephes expf; max relative error 8.4e-8 measured against double), and
// 2^n built in the exponent bits in two halves so n = 128 (x near 88.7) still works. Results
// below 2^-126 (x < -87.5) are flushed to 0: every AFT kernel subtracts a maximum before exp,
// so such terms are below 1e-38 of the largest one and do not change a sum. double: std::exp
// per lane (the float64 path is the reference; accuracy first).
inline Vec<float> vexp(Vec<float> x) {
  using V = Vec<float>;
  using I = Simd<float>::I;
  I under = x < -87.5f;
  x = x < -87.5f ? -87.5f : x;
  x = x > 88.75f ? 88.75f : x;
  const float magic = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer
  V n = (x * 1.44269504088896341f + magic) - magic;
  V f = x - n * 0.693145751953125f;       // ln2 split in a high part exact in float ...
  f = f - n * 1.428606765330187045e-06f;  // ... and the rest
  V p = f * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * f + 8.3334519073e-3f;
  p = p * f + 4.1665795894e-2f;
  p = p * f + 1.6666665459e-1f;
  p = p * f + 5.0000001201e-1f;
  p = p * f * f + f + 1.0f;
  I ni = __builtin_convertvector(n, I);
  I n1 = ni >> 1;
  I b1 = (n1 + 127) << 23, b2 = (ni - n1 + 127) << 23;
  V y = p * (V)b1 * (V)b2;  // a vector cast reinterprets the bits
  return under ? V{} : y;
}
inline Vec<double> vexp(Vec<double> x) {
  for (int i = 0; i < 4; ++i) x[i] = std::exp(x[i]);
  return x;
}
template <class V>
inline V vlog(V x) {
  for (int i = 0; i < kLanes<V>; ++i) x[i] = std::log(x[i]);
  return x;
}
// s = sigmoid(q) and sd = sigmoid(q)·sigmoid(-q) = sigmoid'(q), from one e = e^{-|q|}:
// sigmoid(|q|) = 1/(1+e), sigmoid(-|q|) = e/(1+e). No overflow, no 1 - sigmoid cancellation.
template <class V>
inline void vsigmoid(V q, V& s, V& sd) {
  using T = LaneOf<V>;
  V e = vexp(-vabs(q));
  V inv = T(1) / (T(1) + e);
  s = q >= 0 ? inv : e * inv;
  sd = e * inv * inv;
}

// ---------------------------------------------------------------- the stable running sum

// Below any exponent that occurs; "nothing summed yet". Finite on purpose: kEmpty - kEmpty = 0
// (no inf - inf = NaN), and e^{s - kEmpty} / e^{kEmpty - s} are inf / 0 as wanted.
inline constexpr double kEmpty = -1e30;

// Two sums of exponentials held as a scale and two mantissas, per lane:
//   A = a · e^m,  B = b · e^m,   with m the largest exponent pushed so far.
// Forward: exponent k + w, a accumulates v, b accumulates 1 -> r = a / b, L = m + log b.
// Backward: exponent -L[t], a accumulates gr[t], b accumulates gr[t]·r[t].
// push() rescales to the larger exponent with one exp: the term is e^0 = 1 when it is the new
// maximum, else e^{s - m} <= 1. So nothing overflows, and in the forward b >= 1 always (the
// largest term is exactly 1): no 0/0, whatever the inputs (the underflow that plain
// "subtract max k and max w separately" suffers from cannot happen).
template <class T>
struct Acc {
  Vec<T> m, a, b;
  static Acc empty() { return {splat<T>(static_cast<T>(kEmpty)), Vec<T>{}, Vec<T>{}}; }
  // Adds e^s·x to A and e^s·y to B.
  void push(Vec<T> s, Vec<T> x, Vec<T> y) {
    Vec<T> e = vexp(-vabs(s - m));
    auto gt = s > m;
    a = gt ? a * e + x : a + x * e;
    b = gt ? b * e + y : b + y * e;
    m = gt ? s : m;
  }
  void merge(const Acc& o) { push(o.m, o.a, o.b); }
};

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

// ---------------------------------------------------------------- work partition

inline int64_t num_chunks(int64_t D, int W) { return (D + W - 1) / W; }
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

// The gate, elementwise over n = B·T·D values (or B·D for non-causal aft_simple's r):
//   gr = g · sigmoid(q)          (the gradient that reaches r)
//   dq = g · r · sigmoid'(q)
// r may be broadcast: r_index(i) gives the element of r for element i.
template <class T, class RIndex>
void gate_backward(const T* q, const T* g, const T* r, int64_t n, T* gr, T* dq, RIndex r_index) {
  parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T s = emath::sigmoid(q[i]);
      T sn = emath::sigmoid(-q[i]);
      gr[i] = g[i] * s;
      if (dq) dq[i] = g[i] * r[r_index(i)] * s * sn;
    }
  });
}

// A key position t' gets from the targets whose sum it enters with weight e^{k[t'] - L[t]}
// (no bias: the "far" part of aft_local/aft_conv, all of aft_simple), given their running sum
// F (exponent -L[t], a = Σ gr, b = Σ gr·r):
//   dv[t'] += e^{k + F.m} F.a,   dk[t'] += e^{k + F.m} (v F.a - F.b)
// k + F.m <= 0 because L[t] >= k[t'] for every target t that sums key t' with bias 0: the
// factor never overflows.
template <class T>
inline void far_grad(Vec<T> k, Vec<T> v, const Acc<T>& F, Vec<T>& dv, Vec<T>& dk) {
  Vec<T> f = vexp(k + F.m);
  dv += f * F.a;
  dk += f * (v * F.a - F.b);
}

// ---------------------------------------------------------------- separable tiles

// The tiled "separable shift" of AFT-full (ops/aft_full.cpp explains it), shared with aft_local's
// band: a (row t, key tile) term e^{k + w} is computed as e^{w - Mw}·e^{k - Mk} times the shift
// e^{Mk + Mw}, and the safe/exact rule (tile_shift) says when that cannot lose the tile's largest
// term to underflow (else the caller sums the tile exactly, one exp per term).

template <class T>
constexpr T kSafeGap = std::is_same_v<T, float> ? T(50) : T(600);

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
