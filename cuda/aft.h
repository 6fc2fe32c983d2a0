// cuda/aft.h: the launchers of the AFT family's kernels (cuda/aft_full.cu, aft_local.cu,
// aft_simple.cu, aft_conv.cu, aft_bias.cu), called by the ops of the same names in ops/.
// q, k, v, y and the saved statistics L (log-sum-exp of each row) and r (the normalised sum) are
// contiguous [B, T, D] ([B, H, W, C] for aft_conv); the formulas are in core/math/aft.h and the
// ops' files. In every backward, g is the upstream gradient, gr a work buffer of q's shape that
// receives g·sigmoid(q); dq is always written, dk, dv, dw may be absent (empty descriptors) when
// not wanted, and dk, dv come together. A `work` buffer is sized by the matching *_work_elems.
#pragma once

#include <cstdint>

#include "cuda/desc.h"

namespace aft::cuda {

// AFT-full, w [T, T] (the tiled engine of cuda/aft_tiles.cu). dw zero-filled by the caller.
void aft_full_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& w,
                      const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, bool causal);
void aft_full_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                       const TensorDesc& w, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                       const TensorDesc& dq, const TensorDesc& dk, const TensorDesc& dv, const TensorDesc& dw,
                       bool causal);

// AFT-local, the band wb [T, 2·window − 1] ([T, window] when causal). dw zero-filled by the
// caller (cells whose key is outside [0, T) stay 0).
int64_t aft_local_work_elems(int64_t B, int64_t T, int64_t D);
void aft_local_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& wb,
                       const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, const TensorDesc& work,
                       int64_t window, bool causal);
void aft_local_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                        const TensorDesc& wb, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                        const TensorDesc& work, const TensorDesc& dq, const TensorDesc& dk, const TensorDesc& dv,
                        const TensorDesc& dw, int64_t window, bool causal);

// AFT-simple (no bias). L, r are [B, 1, D] when not causal. Its backward computes gr itself.
int64_t aft_simple_work_elems(int64_t B, int64_t T, int64_t D, bool causal);
void aft_simple_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& y,
                        const TensorDesc& L, const TensorDesc& r, const TensorDesc& work, bool causal);
void aft_simple_backward(const TensorDesc& q, const TensorDesc& g, const TensorDesc& k, const TensorDesc& v,
                         const TensorDesc& L, const TensorDesc& r, const TensorDesc& work, const TensorDesc& dq,
                         const TensorDesc& dk, const TensorDesc& dv, bool causal);

// AFT-conv on images [B, H, W, C], w [heads, s, s], k per head [B, H, W, heads] or per channel.
// dkc: per-channel dk work buffer (k per head only: summed over each head into dk).
int64_t aft_conv_work_elems(int64_t B, int64_t H, int64_t W, int64_t C, int64_t s, bool f64);
void aft_conv_forward(const TensorDesc& q, const TensorDesc& k, const TensorDesc& v, const TensorDesc& w,
                      const TensorDesc& y, const TensorDesc& L, const TensorDesc& r, const TensorDesc& work);
void aft_conv_backward(const TensorDesc& q, const TensorDesc& gy, const TensorDesc& k, const TensorDesc& v,
                       const TensorDesc& w, const TensorDesc& L, const TensorDesc& r, const TensorDesc& gr,
                       const TensorDesc& dkc, const TensorDesc& work, const TensorDesc& dq, const TensorDesc& dk,
                       const TensorDesc& dv, const TensorDesc& dw);

// aft_band_bias: out [T, nb] = the band of the factorised bias u·vᵀ, nb = 2·window − 1, or window
// when causal (ops/aft_bias.cpp).
void aft_band_bias_forward(const TensorDesc& u, const TensorDesc& v, const TensorDesc& out, int64_t window);
void aft_band_bias_backward(const TensorDesc& g, const TensorDesc& u, const TensorDesc& v, const TensorDesc& du,
                            const TensorDesc& dv, int64_t window);

}  // namespace aft::cuda
