// cuda/aft_tiles.cuh: the entry points of the tiled AFT engine (cuda/aft_tiles.cu) that
// cuda/aft_full.cu and cuda/aft_local.cu launch.
//
#pragma once

#include "cuda/aft_common.cuh"

namespace aft::cuda::aftk {

// aft_full and aft_local share one set of tiled kernels: AFT-local is AFT-full whose bias is 0
// outside the band, restricted to the key tiles near the band, plus the far keys' prefix and
// suffix sums (chunk-scan results at a 32-row boundary). The bias is described by this plain
// struct; the far sums by pointers that are null for aft_full.
template <class T>
struct BiasSpec {
  const T* w = nullptr;  // full: [T, T]; band: [T, nb]
  int64_t n = 0;         // T, the sequence length
  int64_t W = 0;         // band: the window; 0: full
  int64_t nb = 0;        // band columns (2W - 1, or W when causal)
  bool causal = false;
  __host__ __device__ bool band() const { return W > 0; }
};

// Forward: y, L, r [B, T, D]. pre/suf (band only): key-chunk prefix / suffix sums of e^k·(v, 1),
// [B, nch + 1, D] (suf null when causal).
template <class T>
void tiles_forward(const T* q, const T* k, const T* v, const BiasSpec<T>& bias, const Acc<T>* pre,
                   const Acc<T>* suf, T* y, T* L, T* r, int64_t B, int64_t D);
// Backward of k and v given gr [B, T, D]: dk, dv. pre/suf (band only): target-chunk sums of
// e^{-L}·(gr, gr·r) (pre null when causal).
template <class T>
void tiles_backward_kv(const T* k, const T* v, const T* L, const T* r, const T* gr, const BiasSpec<T>& bias,
                       const Acc<T>* pre, const Acc<T>* suf, T* dk, T* dv, int64_t B, int64_t D);
// dw (full [T, T], or the band [T, nb], zero-filled by the caller: cells whose key is outside
// [0, T) are not written).
template <class T>
void tiles_backward_w(const T* k, const T* v, const T* L, const T* r, const T* gr, const BiasSpec<T>& bias,
                      T* dw, int64_t B, int64_t D);

}  // namespace aft::cuda::aftk
