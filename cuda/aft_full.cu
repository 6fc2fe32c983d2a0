// cuda/aft_full.cu: the launchers of AFT-full (ops/aft_full.cpp) on the GPU: the gate's backward
// and the tiled engine of cuda/aft_tiles.cu with the full bias w [T, T].
#include "cuda/aft.h"
#include "cuda/aft_tiles.cuh"

namespace aft::cuda {

// q, k, v, y, L, r contiguous [B, T, D]; w contiguous [T, T].
void aft_full_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& w,
                      const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, bool causal) {
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    aftk::BiasSpec<T> bias{w.ptr<const T>(), q.shape[1], 0, 0, causal};
    aftk::tiles_forward<T>(q.ptr<const T>(), k.ptr<const T>(), v.ptr<const T>(), bias, nullptr, nullptr, y.ptr<T>(),
                           L.ptr<T>(), r.ptr<T>(), q.shape[0], q.shape[2]);
  });
}

// g the upstream gradient; gr a [B, T, D] work buffer; dq, dk, dv, dw may be absent (dk and dv
// come together); dw [T, T] zero-filled by the caller.
void aft_full_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                       const TensorDesc& w, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                       const TensorDesc& dq, const TensorDesc& dk, const TensorDesc& dv, const TensorDesc& dw,
                       bool causal) {
  with_float_type(q.dtype, [&](auto z) {
    using T = decltype(z);
    const int64_t B = q.shape[0], D = q.shape[2];
    aftk::launch_gate_backward<T>(q.ptr<const T>(), g.ptr<const T>(), r.ptr<const T>(), gr.ptr<T>(), dq.ptr<T>(),
                                  q.numel());
    aftk::BiasSpec<T> bias{w.ptr<const T>(), q.shape[1], 0, 0, causal};
    if (dk.data)
      aftk::tiles_backward_kv<T>(k.ptr<const T>(), v.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
                                 gr.ptr<const T>(), bias, nullptr, nullptr, dk.ptr<T>(), dv.ptr<T>(), B, D);
    if (dw.data)
      aftk::tiles_backward_w<T>(k.ptr<const T>(), v.ptr<const T>(), L.ptr<const T>(), r.ptr<const T>(),
                                gr.ptr<const T>(), bias, dw.ptr<T>(), B, D);
  });
}

}  // namespace aft::cuda
