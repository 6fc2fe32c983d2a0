// ops/layer_norm.cpp: layer normalisation over the last dim, with optional elementwise affine
// weight and bias [D]. x [..., D] is handled as R = numel / D rows of D (made contiguous).
//
// Forward, one kernel, one row per task (the row stays in cache between its loops):
//   mean = sum_j x_j / D,  var = sum_j (x_j - mean)^2 / D   (biased, the two-pass form: no
//   cancellation as in E[x^2] - E[x]^2),  rstd = 1 / sqrt(var + eps)
//   xhat_j = (x_j - mean) · rstd,  y_j = xhat_j · w_j + b_j
// Saved for backward: x, and mean and rstd per row (R numbers each, not the normalised tensor:
// xhat is recomputed), plus w for dx. Each only when a gradient needs it.
//
// Backward, with gw_j = g_j · w_j (g_j when there is no weight):
//   dx_j = rstd · (gw_j - mean_k(gw_k) - xhat_j · mean_k(gw_k · xhat_k))   per row, row-parallel
//   dw_j = sum_r g_rj · xhat_rj,  db_j = sum_r g_rj                         column-parallel:
// each column is summed by one thread over the rows in order, so dw and db do not depend on the
// thread count. Sums of float32 accumulate in float64.
// CUDA tensors run cuda/layer_norm.cu (same formulas: a warp or block per row with Welford
// statistics; dw/db as per-block partial column sums and a second kernel, no atomics).
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/tape.h"
#include "cuda/layer_norm.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

template <class T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;

// w, b may be null (weight 1, bias 0).
template <class T>
void forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t R, int64_t D,
                    double eps) {
  if (D == 0) return;
  parallel_for(0, R, std::max<int64_t>(1, kElementwiseGrain / D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * D;
      T* yr = y + r * D;
      Acc<T> s = 0;
      for (int64_t j = 0; j < D; ++j) s += xr[j];
      const Acc<T> mu = s / static_cast<Acc<T>>(D);
      Acc<T> v = 0;
      for (int64_t j = 0; j < D; ++j) {
        Acc<T> c = xr[j] - mu;
        v += c * c;
      }
      const Acc<T> rs = 1 / std::sqrt(v / static_cast<Acc<T>>(D) + static_cast<Acc<T>>(eps));
      const T mu_t = static_cast<T>(mu), rs_t = static_cast<T>(rs);
      for (int64_t j = 0; j < D; ++j) {
        T xh = (xr[j] - mu_t) * rs_t;
        yr[j] = xh * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
      }
      mean[r] = mu_t;
      rstd[r] = rs_t;
    }
  });
}

// dx rows; w may be null.
template <class T>
void backward_dx_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* g, T* dx, int64_t R,
                        int64_t D) {
  if (D == 0) return;
  parallel_for(0, R, std::max<int64_t>(1, kElementwiseGrain / D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T *xr = x + r * D, *gr = g + r * D;
      T* dr = dx + r * D;
      const T mu = mean[r], rs = rstd[r];
      Acc<T> a = 0, bsum = 0;  // sum gw, sum gw·xhat
      for (int64_t j = 0; j < D; ++j) {
        T gw = gr[j] * (w ? w[j] : T(1));
        a += gw;
        bsum += gw * ((xr[j] - mu) * rs);
      }
      const T ma = static_cast<T>(a / static_cast<Acc<T>>(D)), mb = static_cast<T>(bsum / static_cast<Acc<T>>(D));
      for (int64_t j = 0; j < D; ++j) {
        T gw = gr[j] * (w ? w[j] : T(1));
        dr[j] = rs * (gw - ma - (xr[j] - mu) * rs * mb);
      }
    }
  });
}

// dw, db over columns (either may be null; x/mean/rstd unused when dw is null).
template <class T>
void backward_dwdb_kernel(const T* x, const T* mean, const T* rstd, const T* g, T* dw, T* db, int64_t R,
                          int64_t D) {
  parallel_for(0, D, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)),
               [&](int64_t j0, int64_t j1) {
    std::vector<Acc<T>> aw(static_cast<size_t>(j1 - j0), 0), ab(static_cast<size_t>(j1 - j0), 0);
    for (int64_t r = 0; r < R; ++r) {
      const T* gr = g + r * D;
      if (dw) {
        const T* xr = x + r * D;
        const T mu = mean[r], rs = rstd[r];
        for (int64_t j = j0; j < j1; ++j) aw[j - j0] += gr[j] * ((xr[j] - mu) * rs);
      }
      if (db)
        for (int64_t j = j0; j < j1; ++j) ab[j - j0] += gr[j];
    }
    for (int64_t j = j0; j < j1; ++j) {
      if (dw) dw[j] = static_cast<T>(aw[j - j0]);
      if (db) db[j] = static_cast<T>(ab[j - j0]);
    }
  });
}

void check_affine(const Tensor& x, const Tensor& p, const char* what) {
  if (!p.defined()) return;
  AFT_CHECK(is_floating(p.dtype()) && p.dtype() == x.dtype() && p.device() == x.device(),
            "layer_norm: {} is {} on {} but x is {} on {}", what, p.dtype(), p.device(), x.dtype(), x.device());
  AFT_CHECK(p.ndim() == 1 && p.shape()[0] == x.shape().back(),
            "layer_norm: {} must have shape [{}] (the last dim of x {}), got {}", what, x.shape().back(),
            x.shape(), p.shape());
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_float("layer_norm", x);
  AFT_CHECK(x.ndim() >= 1, "layer_norm: x must have at least one dim, got a 0-d tensor");
  check_affine(x, weight, "weight");
  check_affine(x, bias, "bias");
  AFT_CHECK(eps >= 0 && std::isfinite(eps), "layer_norm: eps must be finite and non-negative, got {}", eps);
  const int64_t D = x.shape().back(), R = D == 0 ? 0 : x.numel() / D;
  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  Tensor mean = empty({R}, {x.dtype(), x.device()}), rstd = empty({R}, {x.dtype(), x.device()});
  if (x.is_cuda()) {
    AFT_CUDA_CALL(cuda::layer_norm_forward(desc(xc), desc_or_null(wc), desc_or_null(bc), desc(y), desc(mean),
                                           desc(rstd), eps));
  } else {
    dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
      forward_kernel<T>(xc.data<T>(), ptr_or_null<T>(wc), ptr_or_null<T>(bc), y.data<T>(), mean.data<T>(),
                        rstd.data<T>(), R, D, eps);
    });
  }
  if (!autograd::needs_grad(x, weight, bias)) return y;
  const bool nx = autograd::needs_grad(x), nw = autograd::needs_grad(weight), nb = autograd::needs_grad(bias);
  // x, mean and rstd give xhat (for dx and dw); w only enters dx.
  SavedTensor sx = (nx || nw) ? SavedTensor(xc) : SavedTensor();
  SavedTensor sw = (nx && wc.defined()) ? SavedTensor(wc) : SavedTensor();
  Tensor m = (nx || nw) ? mean : Tensor(), rs = (nx || nw) ? rstd : Tensor();
  Shape xs = x.shape();
  autograd::record("layer_norm", {x, weight, bias}, {y}, [=](const TensorList& g) {
    Tensor gc = g[0].contiguous();
    Tensor dx = nx ? empty(xs, {gc.dtype(), gc.device()}) : Tensor();
    Tensor dw = nw ? empty({D}, {gc.dtype(), gc.device()}) : Tensor();
    Tensor db = nb ? empty({D}, {gc.dtype(), gc.device()}) : Tensor();
    if (gc.is_cuda()) {
      AFT_CUDA_CALL([&] {
        // float64 partial column sums of dw and db (cuda/layer_norm.cu)
        Tensor work = (nw || nb) ? empty({2, cuda::layer_norm_grad_parts(R), D}, {kFloat64, gc.device()}) : Tensor();
        cuda::layer_norm_backward(desc_or_null(sx.defined() ? sx.get() : Tensor()),
                                  desc_or_null(sw.defined() ? sw.get() : Tensor()), desc_or_null(m), desc_or_null(rs),
                                  desc(gc), desc_or_null(dx), desc_or_null(dw), desc_or_null(db), desc_or_null(work));
      }());
      return TensorList{dx, dw, db};
    }
    dispatch_float(gc.dtype(), "layer_norm", [&]<class T>() {
      const T* xp = sx.defined() ? sx.get().data<T>() : nullptr;
      const T* mp = ptr_or_null<T>(m);
      const T* rp = ptr_or_null<T>(rs);
      if (nx) backward_dx_kernel<T>(xp, sw.defined() ? sw.get().data<T>() : nullptr, mp, rp, gc.data<T>(),
                                    dx.data<T>(), R, D);
      if (nw || nb) backward_dwdb_kernel<T>(xp, mp, rp, gc.data<T>(), ptr_or_null<T>(dw),
                                            ptr_or_null<T>(db), R, D);
    });
    return TensorList{dx, dw, db};
  });
  return y;
}

}  // namespace aft
