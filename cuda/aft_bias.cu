// cuda/aft_bias.cu: aft_band_bias on the GPU, forward and backward, with the formulas of
// ops/aft_bias.cpp. u, v, du, dv contiguous [T, C]; out and g contiguous [T, nb]
// (nb = 2W − 1, or W when causal); key(t, j) = t + j − (W − 1).
//
// Thread mapping: one thread per output element in a grid-stride loop, each summing its own
// terms in the CPU's order: no atomics, deterministic, equal to the CPU up to fused
// multiply-adds. The band is narrow (W ≲ 256) and C (d') small, so these run far below the
// cost of the AFT-local kernels that consume the band.
#include "cuda/aft.h"
#include "cuda/kernel_common.h"

namespace aft::cuda {
namespace {

// out[t, j] = Σ_c u[t, c] · v[t', c],  t' = t + j − (W − 1);  0 where t' ∉ [0, T)
template <class T>
__global__ void band_forward_kernel(const T* u, const T* v, T* out, int64_t T_, int64_t C, int64_t W, int64_t nb) {
  AFT_KERNEL_LOOP(i, T_ * nb) {
    const int64_t t = i / nb, tp = t + i % nb - (W - 1);
    T acc = 0;
    if (tp >= 0 && tp < T_)
      for (int64_t c = 0; c < C; ++c) acc += u[t * C + c] * v[tp * C + c];
    out[i] = acc;
  }
}

// du[t, c] = Σ_j g[t, j] · v[t + j − (W − 1), c]          (terms with the key in [0, T))
template <class T>
__global__ void band_du_kernel(const T* g, const T* v, T* du, int64_t T_, int64_t C, int64_t W, int64_t nb) {
  AFT_KERNEL_LOOP(i, T_ * C) {
    const int64_t t = i / C, c = i % C;
    T acc = 0;
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t tp = t + j - (W - 1);
      if (tp >= 0 && tp < T_) acc += g[t * nb + j] * v[tp * C + c];
    }
    du[i] = acc;
  }
}

// dv[t', c] = Σ_j g[t' − j + (W − 1), j] · u[t' − j + (W − 1), c]   (terms with the row in [0, T))
template <class T>
__global__ void band_dv_kernel(const T* g, const T* u, T* dv, int64_t T_, int64_t C, int64_t W, int64_t nb) {
  AFT_KERNEL_LOOP(i, T_ * C) {
    const int64_t tp = i / C, c = i % C;
    T acc = 0;
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t t = tp - j + (W - 1);
      if (t >= 0 && t < T_) acc += g[t * nb + j] * u[t * C + c];
    }
    dv[i] = acc;
  }
}

}  // namespace

// out [T, nb] from u, v [T, C].
void aft_band_bias_forward(const TensorDesc& u, const TensorDesc& v, const TensorDesc& out, int64_t window) {
  const int64_t T_ = u.shape[0], C = u.shape[1], nb = out.shape[1];
  with_float_type(u.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(band_forward_kernel<T>, loop_blocks(T_ * nb), kLoopThreads, 0, u.ptr<const T>(), v.ptr<const T>(),
               out.ptr<T>(), T_, C, window, nb);
  });
}

// du needs v, dv needs u; either gradient may be absent (data == nullptr), and then so may the
// input it would have needed.
void aft_band_bias_backward(const TensorDesc& g, const TensorDesc& u, const TensorDesc& v, const TensorDesc& du,
                            const TensorDesc& dv, int64_t window) {
  const int64_t T_ = g.shape[0], nb = g.shape[1];
  with_float_type(g.dtype, [&](auto z) {
    using T = decltype(z);
    if (du.data) {
      const int64_t C = du.shape[1];
      AFT_LAUNCH(band_du_kernel<T>, loop_blocks(T_ * C), kLoopThreads, 0, g.ptr<const T>(), v.ptr<const T>(),
                 du.ptr<T>(), T_, C, window, nb);
    }
    if (dv.data) {
      const int64_t C = dv.shape[1];
      AFT_LAUNCH(band_dv_kernel<T>, loop_blocks(T_ * C), kLoopThreads, 0, g.ptr<const T>(), u.ptr<const T>(),
                 dv.ptr<T>(), T_, C, window, nb);
    }
  });
}

}  // namespace aft::cuda
