// ops/softmax.cpp: softmax and log_softmax along any dim, each one fused kernel forward and one
// fused kernel backward (the unfused version would be amax, sub, exp, sum, div: five passes and
// four temporaries).
//
// Layout: x (made contiguous) is viewed as [O, N, I] around dim (O = extents before it, N = the
// softmax extent, I = extents after it). A lane (o, i) is one softmax over N elements spaced I
// apart. Threads take tiles of up to kTile neighbouring lanes, so for dim = -1 (I = 1) a tile is
// one contiguous row, and for an inner dim the k loop walks rows of I contiguous elements.
//
// Forward, per lane, max-shifted so exp never overflows:
//   m = max_k x_k,  s = sum_k exp(x_k - m)
//   softmax:     y_k = exp(x_k - m) / s
//   log_softmax: y_k = x_k - m - log(s)
// A lane that is all -inf, or holds +inf or NaN, gives NaN (as PyTorch).
// Backward, with g the upstream gradient and y the saved output (x is not kept):
//   softmax:     dx_k = y_k · (g_k - sum_j g_j · y_j)
//   log_softmax: dx_k = g_k - exp(y_k) · sum_j g_j
// Sums of float32 accumulate in float64.
// CUDA tensors run cuda/softmax.cu (same formulas; a warp or block per row for the last dim),
// forward and backward.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/tape.h"
#include "core/math/elementwise.h"
#include "cuda/softmax.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

constexpr int64_t kTile = 64;

struct Lanes {
  int64_t O = 1, N = 1, I = 1;
};

Lanes lanes_of(const Shape& s, int d) {
  Lanes L;
  if (s.ndim() == 0) return L;  // a 0-d tensor is one lane of one element
  for (int k = 0; k < d; ++k) L.O *= s[k];
  L.N = s[d];
  for (int k = d + 1; k < s.ndim(); ++k) L.I *= s[k];
  return L;
}

// f(o, i0, i1) over tiles of at most kTile lanes covering the O·I lanes; multithreaded, each
// lane handled by exactly one thread (no reduction crosses threads).
template <class F>
void for_lane_tiles(const Lanes& L, F&& f) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(L.N, 1));
  parallel_for(0, L.O * L.I, grain, [&](int64_t b, int64_t e) {
    for (int64_t pos = b; pos < e;) {
      const int64_t o = pos / L.I, i0 = pos % L.I;
      const int64_t i1 = std::min({L.I, i0 + (e - pos), i0 + kTile});
      f(o, i0, i1);
      pos += i1 - i0;
    }
  });
}

template <class T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T>
void forward_kernel(bool log, const Lanes& L, const T* x, T* y) {
  for_lane_tiles(L, [&](int64_t o, int64_t i0, int64_t i1) {
    const int64_t n = i1 - i0, base = o * L.N * L.I + i0;
    const T* xp = x + base;
    T* yp = y + base;
    T m[kTile];
    Acc<T> s[kTile];
    for (int64_t i = 0; i < n; ++i) {
      m[i] = -std::numeric_limits<T>::infinity();
      s[i] = 0;
    }
    for (int64_t k = 0; k < L.N; ++k)
      for (int64_t i = 0; i < n; ++i) m[i] = std::max(m[i], xp[k * L.I + i]);
    // softmax keeps exp(x - m) in y and rescales it; log_softmax only needs the sum.
    for (int64_t k = 0; k < L.N; ++k)
      for (int64_t i = 0; i < n; ++i) {
        T ek = emath::exp_(xp[k * L.I + i] - m[i]);
        if (!log) yp[k * L.I + i] = ek;
        s[i] += ek;
      }
    if (log) {
      T lse[kTile];
      for (int64_t i = 0; i < n; ++i) lse[i] = m[i] + static_cast<T>(std::log(s[i]));
      for (int64_t k = 0; k < L.N; ++k)
        for (int64_t i = 0; i < n; ++i) yp[k * L.I + i] = xp[k * L.I + i] - lse[i];
    } else {
      T inv[kTile];
      for (int64_t i = 0; i < n; ++i) inv[i] = static_cast<T>(1 / s[i]);
      for (int64_t k = 0; k < L.N; ++k)
        for (int64_t i = 0; i < n; ++i) yp[k * L.I + i] *= inv[i];
    }
  });
}

template <class T>
void backward_kernel(bool log, const Lanes& L, const T* y, const T* g, T* dx) {
  for_lane_tiles(L, [&](int64_t o, int64_t i0, int64_t i1) {
    const int64_t n = i1 - i0, base = o * L.N * L.I + i0;
    const T *yp = y + base, *gp = g + base;
    T* dp = dx + base;
    Acc<T> s[kTile];  // sum g·y (softmax) or sum g (log_softmax)
    for (int64_t i = 0; i < n; ++i) s[i] = 0;
    for (int64_t k = 0; k < L.N; ++k)
      for (int64_t i = 0; i < n; ++i) s[i] += log ? gp[k * L.I + i] : gp[k * L.I + i] * yp[k * L.I + i];
    T st[kTile];
    for (int64_t i = 0; i < n; ++i) st[i] = static_cast<T>(s[i]);
    for (int64_t k = 0; k < L.N; ++k)
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = k * L.I + i;
        dp[j] = log ? gp[j] - emath::exp_(yp[j]) * st[i] : yp[j] * (gp[j] - st[i]);
      }
  });
}

Tensor softmax_op(const char* op, bool log, const Tensor& x, int64_t dim) {
  check_float(op, x);
  const int d = wrap_dim(dim, x.ndim(), op);
  const Lanes L = lanes_of(x.shape(), d);
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  if (x.is_cuda()) {
    AFT_CUDA_CALL(cuda::softmax_forward(desc(xc), desc(y), d, log));
  } else {
    dispatch_float(x.dtype(), op, [&]<class T>() { forward_kernel<T>(log, L, xc.data<T>(), y.data<T>()); });
  }
  if (!autograd::needs_grad(x)) return y;
  SavedTensor saved_y(y);
  autograd::record(op, {x}, {y}, [saved_y, L, d, log, op](const TensorList& g) {
    const Tensor& yv = saved_y.get();
    Tensor gc = g[0].contiguous();
    Tensor dx = empty(yv.shape(), {yv.dtype(), yv.device()});
    if (yv.is_cuda()) {
      AFT_CUDA_CALL(cuda::softmax_backward(desc(yv), desc(gc), desc(dx), d, log));
      return TensorList{dx};
    }
    dispatch_float(yv.dtype(), op, [&]<class T>() {
      backward_kernel<T>(log, L, yv.data<T>(), gc.data<T>(), dx.data<T>());
    });
    return TensorList{dx};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op("softmax", false, x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op("log_softmax", true, x, dim); }

}  // namespace aft
