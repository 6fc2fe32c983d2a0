// ops/aft_bias.cpp: aft_band_bias, the band of a factorised AFT position bias w = u·vᵀ.
//
// AFT-local keeps only the band |t − t'| < W of the T×T bias (ops/aft_local.cpp). With the
// paper's factorised parameterisation w = u·vᵀ (u, v of [T, d']) the band can be computed
// directly, in O(T·W·d') time and O(T·W) memory, instead of forming the T×T product:
//
//   out[t, j] = Σ_c u[t, c] · v[t', c],   t' = t + j − (W − 1),   j ∈ [0, nb)
//   (nb = 2W − 1, or W when causal; out[t, j] = 0 where t' ∉ [0, T))
//
// Backward, with g = dL/dout:
//   du[t]  = Σ_j g[t, j] · v[t + j − (W − 1)]
//   dv[t'] = Σ_j g[t' − j + (W − 1), j] · u[t' − j + (W − 1)]
// Each output row (and each dv row) is computed by one task, so results do not depend on the
// thread count. CUDA tensors run cuda/aft_bias.cu (the same sums, one thread per element).
#include "autograd/tape.h"
#include "core/parallel.h"
#include "cuda/aft.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

struct BandGeom {
  int64_t T, C, W, nb;
  int64_t key(int64_t t, int64_t j) const { return t + j - (W - 1); }
};

template <class T>
void band_forward(const T* u, const T* v, T* out, const BandGeom& g) {
  parallel_for(0, g.T, std::max<int64_t>(1, 4096 / (g.nb * g.C + 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t j = 0; j < g.nb; ++j) {
        int64_t tp = g.key(t, j);
        T acc = 0;
        if (tp >= 0 && tp < g.T)
          for (int64_t c = 0; c < g.C; ++c) acc += u[t * g.C + c] * v[tp * g.C + c];
        out[t * g.nb + j] = acc;
      }
    }
  });
}

template <class T>
void band_backward(const T* gr, const T* u, const T* v, T* du, T* dv, const BandGeom& g) {
  int64_t grain = std::max<int64_t>(1, 4096 / (g.nb * g.C + 1));
  if (du)
    parallel_for(0, g.T, grain, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        T* d = du + t * g.C;
        for (int64_t c = 0; c < g.C; ++c) d[c] = 0;
        for (int64_t j = 0; j < g.nb; ++j) {
          int64_t tp = g.key(t, j);
          if (tp < 0 || tp >= g.T) continue;
          T s = gr[t * g.nb + j];
          for (int64_t c = 0; c < g.C; ++c) d[c] += s * v[tp * g.C + c];
        }
      }
    });
  if (dv)
    parallel_for(0, g.T, grain, [&](int64_t p0, int64_t p1) {
      for (int64_t tp = p0; tp < p1; ++tp) {
        T* d = dv + tp * g.C;
        for (int64_t c = 0; c < g.C; ++c) d[c] = 0;
        for (int64_t j = 0; j < g.nb; ++j) {
          int64_t t = tp - j + (g.W - 1);
          if (t < 0 || t >= g.T) continue;
          T s = gr[t * g.nb + j];
          for (int64_t c = 0; c < g.C; ++c) d[c] += s * u[t * g.C + c];
        }
      }
    });
}

}  // namespace

Tensor aft_band_bias(const Tensor& u, const Tensor& v, int64_t window, bool causal) {
  const char* op = "aft_band_bias";
  check_float_pair(op, u, v);
  AFT_CHECK(u.ndim() == 2 && v.ndim() == 2 && u.shape() == v.shape(),
            "{}: u and v must both be [T, d'], got {} and {}", op, u.shape(), v.shape());
  AFT_CHECK(window >= 1, "{}: window must be >= 1, got {}", op, window);
  BandGeom g{u.size(0), u.size(1), window, causal ? window : 2 * window - 1};
  Tensor uc = u.contiguous(), vc = v.contiguous();
  Tensor out = empty({g.T, g.nb}, {u.dtype(), u.device()});
  if (out.is_cuda()) {
    AFT_CUDA_CALL(cuda::aft_band_bias_forward(desc(uc), desc(vc), desc(out), window));
  } else {
    dispatch_float(u.dtype(), op, [&]<class T>() {
      band_forward<T>(uc.data<T>(), vc.data<T>(), out.data<T>(), g);
    });
  }
  if (autograd::needs_grad(u, v)) {
    bool nu = autograd::needs_grad(u), nv = autograd::needs_grad(v);
    SavedTensor su = nv ? SavedTensor(uc) : SavedTensor(), sv = nu ? SavedTensor(vc) : SavedTensor();
    autograd::record(op, {u, v}, {out}, [=](const TensorList& grads) {
      Tensor gr = grads[0].contiguous();
      Tensor du = nu ? empty({g.T, g.C}, {gr.dtype(), gr.device()}) : Tensor();
      Tensor dv = nv ? empty({g.T, g.C}, {gr.dtype(), gr.device()}) : Tensor();
      if (gr.is_cuda()) {
        AFT_CUDA_CALL(cuda::aft_band_bias_backward(desc(gr), desc_or_null(nv ? su.get() : Tensor()),
                                                   desc_or_null(nu ? sv.get() : Tensor()), desc_or_null(du),
                                                   desc_or_null(dv), g.W));
      } else {
        dispatch_float(gr.dtype(), "aft_band_bias", [&]<class T>() {
          band_backward<T>(gr.data<T>(), nv ? su.get().data<T>() : nullptr,
                           nu ? sv.get().data<T>() : nullptr, nu ? du.data<T>() : nullptr,
                           nv ? dv.data<T>() : nullptr, g);
        });
      }
      return TensorList{du, dv};
    });
  }
  return out;
}

}  // namespace aft
