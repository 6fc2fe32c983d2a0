// ops/dropout.cpp: inverted dropout with a counter-based mask.
//
// While training with 0 < p < 1:
//   y_i = keep_i · x_i / (1 - p),  keep_i = (u_i >= p),  u_i = philox::uniform_f32_at(seed, c0, i)
// where i is the row-major position of the element in x's shape, (seed, c0) come from the
// generator, which reserves ceil(numel / 4) Philox counters (one per 4 elements), and the
// comparison is done in float32: u_i >= float(p). The CUDA kernel computes the same formula, so
// both devices draw the same mask from the same generator state, for any dtype.
// Other cases: training = false or p = 0 returns x itself (no random numbers drawn);
// p = 1 returns x · 0 (zeros, NaN stays NaN; no random numbers drawn), as PyTorch does.
//
// Backward: dx_i = keep_i · g_i / (1 - p). Nothing is saved: the mask is regenerated from
// (seed, c0), which costs one Philox call per 4 elements and no memory.
// CUDA tensors run cuda/nn_elementwise.cu's dropout_kernel, the same formula element for
// element, so a generator state gives the same mask on both devices.
#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "core/philox.h"
#include "cuda/nn_elementwise.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::TensorList;

// y = keep · x · scale over n contiguous elements, one Philox block of 4 words per 4 elements
// (word j of block b is u of element 4b + j, exactly as uniform_f32_at).
template <class T>
void dropout_kernel(const T* x, T* y, int64_t n, uint64_t seed, uint64_t c0, float p, T scale) {
  const int64_t blocks = (n + 3) / 4;
  parallel_for(0, blocks, kElementwiseGrain / 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      philox::Words w = philox::philox4x32(c0 + static_cast<uint64_t>(b), seed);
      const int64_t i0 = 4 * b, m = std::min<int64_t>(4, n - i0);
      for (int64_t j = 0; j < m; ++j)
        y[i0 + j] = philox::uniform_f32(w.x[j]) >= p ? x[i0 + j] * scale : T(0);
    }
  });
}

Tensor apply_mask(const Tensor& x, uint64_t seed, uint64_t c0, double p) {
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  if (x.is_cuda()) {
    AFT_CUDA_CALL(cuda::dropout_apply(desc(xc), desc(y), seed, c0, p));
    return y;
  }
  dispatch_float(x.dtype(), "dropout", [&]<class T>() {
    dropout_kernel<T>(xc.data<T>(), y.data<T>(), xc.numel(), seed, c0, static_cast<float>(p),
                      static_cast<T>(1.0 / (1.0 - p)));
  });
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_float("dropout", x);
  AFT_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  if (p == 1) return mul(x, 0.0);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed();
  const uint64_t c0 = g.reserve(static_cast<uint64_t>((x.numel() + 3) / 4));
  Tensor y = apply_mask(x, seed, c0, p);
  if (autograd::needs_grad(x))
    autograd::record("dropout", {x}, {y}, [seed, c0, p](const TensorList& gr) {
      return TensorList{apply_mask(gr[0], seed, c0, p)};
    });
  return y;
}

}  // namespace aft
