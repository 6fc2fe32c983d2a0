// core/math/aft.h: the scalar engine of the four AFT operators, written once for the CPU kernels
// (ops/aft_*.cpp, on SIMD vectors of adjacent channels) and the CUDA kernels (cuda/aft_*.cu, one
// channel per thread): the stable running sum Acc, the gate pair, the forward epilogue of a row
// and the gradient a key gets from far targets. docs/aft.md explains the math.
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
// Every function takes a math policy M: M::V is the value type (float or double on the GPU, a
// GCC vector of 8 floats / 4 doubles on the CPU), M::T its lane type, and M::exp/log/abs/splat
// act on V. StdMath below is the <cmath> policy the CUDA kernels use; the CPU's vector policy is
// ops/aft_common.h's VecMath. Selects are written `cond ? a : b`, which GCC evaluates lane-wise
// on vectors and nvcc as a select on scalars.
#pragma once

#include <cmath>

#include "core/philox.h"  // AFT_HD

namespace aft::aft_math {

// Below any exponent that occurs; "nothing summed yet". Finite on purpose: kEmpty - kEmpty = 0
// (no inf - inf = NaN), and e^{s - kEmpty} / e^{kEmpty - s} are inf / 0 as wanted.
inline constexpr double kEmpty = -1e30;

// The scalar policy: full-precision exp and log of T (expf in float32, never __expf).
template <class Lane>
struct StdMath {
  using T = Lane;
  using V = Lane;
  AFT_HD static V exp(V x) { return std::exp(x); }
  AFT_HD static V log(V x) { return std::log(x); }
  AFT_HD static V abs(V x) { return std::fabs(x); }
  AFT_HD static V splat(T x) { return x; }
};

// Two sums of exponentials held as a scale and two mantissas, per lane:
//   A = a · e^m,  B = b · e^m,   with m the largest exponent pushed so far.
// Forward: exponent k + w, a accumulates v, b accumulates 1 -> r = a / b, L = m + log b.
// Backward: exponent -L[t], a accumulates gr[t], b accumulates gr[t]·r[t].
// push() rescales to the larger exponent with one exp: the term is e^0 = 1 when it is the new
// maximum, else e^{s - m} <= 1. So nothing overflows, and in the forward b >= 1 always (the
// largest term is exactly 1): no 0/0, whatever the inputs (the underflow that plain
// "subtract max k and max w separately" suffers from cannot happen). A merge is a push of
// another sum's (m, a, b).
template <class M>
struct Acc {
  using V = typename M::V;
  V m, a, b;
  AFT_HD static Acc empty() {
    const V z = M::splat(typename M::T(0));
    return {M::splat(static_cast<typename M::T>(kEmpty)), z, z};
  }
  // Adds e^s·x to A and e^s·y to B.
  AFT_HD void push(V s, V x, V y) {
    const V e = M::exp(-M::abs(s - m));
    const auto gt = s > m;
    a = gt ? a * e + x : a + x * e;
    b = gt ? b * e + y : b + y * e;
    m = gt ? s : m;
  }
  AFT_HD void merge(const Acc& o) { push(o.m, o.a, o.b); }
};

// s = sigmoid(q) and sd = sigmoid(q)·sigmoid(-q) = sigmoid'(q), from one e = e^{-|q|}:
// sigmoid(|q|) = 1/(1+e), sigmoid(-|q|) = e/(1+e). No overflow, no 1 - sigmoid cancellation.
template <class M>
AFT_HD inline void sigmoid2(typename M::V q, typename M::V& s, typename M::V& sd) {
  using T = typename M::T;
  const typename M::V e = M::exp(-M::abs(q));
  const typename M::V inv = T(1) / (T(1) + e);
  s = q >= T(0) ? inv : e * inv;
  sd = e * inv * inv;
}

// The forward epilogue of one (row, channels): r = a/b, L = m + log b, y = sigmoid(q)·r.
template <class M>
AFT_HD inline void finish_row(const Acc<M>& acc, typename M::V q, typename M::V& y, typename M::V& L,
                              typename M::V& r) {
  typename M::V s, sd;
  sigmoid2<M>(q, s, sd);
  r = acc.a / acc.b;
  y = s * r;
  L = acc.m + M::log(acc.b);
}

// Backward of the gate:  gr = g·sigmoid(q) (the gradient reaching r),  dq = g·r·sigmoid'(q).
template <class M>
AFT_HD inline void gate_grad(typename M::V q, typename M::V g, typename M::V r, typename M::V& gr,
                             typename M::V& dq) {
  typename M::V s, sd;
  sigmoid2<M>(q, s, sd);
  gr = g * s;
  dq = g * r * sd;
}

// A key t' gets from the targets whose sum it enters with weight e^{k[t'] - L[t]} (no bias: the
// "far" part of aft_local/aft_conv, all of causal aft_simple), given their running sum F over
// targets (exponent -L[t], a = Σ gr, b = Σ gr·r):
//   dv[t'] += e^{k + F.m} F.a,   dk[t'] += e^{k + F.m} (v F.a - F.b)
// k + F.m <= 0 because L[t] >= k[t'] for every target t that sums key t' with bias 0: the
// factor never overflows.
template <class M>
AFT_HD inline void far_grad(typename M::V k, typename M::V v, const Acc<M>& F, typename M::V& dv,
                            typename M::V& dk) {
  const typename M::V f = M::exp(k + F.m);
  dv += f * F.a;
  dk += f * (v * F.a - F.b);
}

// The tiles' separable shift (ops/aft_full.cpp explains it) is certified when the gap between
// the shift and a lower bound of the tile's largest exponent is at most this: the largest term
// is then >= e^{-gap}, far above the underflow of T (e^{-87} in float32, e^{-708} in float64).
template <class T>
AFT_HD constexpr T safe_gap() {
  return sizeof(T) == 4 ? T(50) : T(600);
}

}  // namespace aft::aft_math
