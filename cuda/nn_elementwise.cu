// cuda/nn_elementwise.cu: the elementwise NN ops with more than one formula per element:
// sigmoid_gate (forward and backward) and dropout (its mask is the CPU's, from Philox).
//
// Thread mapping: one thread per element (dropout: per 4 elements, one Philox block) in a
// grid-stride loop of 256-thread blocks. sigmoid_gate's operands broadcast against each other
// and may have any strides (cuda/offsets.h); when every operand is dense with the result's
// shape the linear index is the offset (no division per element).
#include "core/math/elementwise.h"
#include "core/philox.h"
#include "cuda/kernel_common.h"
#include "cuda/nn_elementwise.h"
#include "cuda/offsets.h"

namespace aft::cuda {
namespace {

// y = sigmoid(q) · x   (emath::sigmoid: the CPU's two-branch form, so exp never overflows)
// Operands: y, q, x.
template <class T>
__global__ void sigmoid_gate_kernel(const T* q, const T* x, T* y, int64_t n, bool dense, OffsetCalc<3> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[3] = {i, i, i};
    if (!dense) oc.get(i, off);
    y[off[0]] = emath::sigmoid(q[off[1]]) * x[off[2]];
  }
}

// With s = sigmoid(q) recomputed:  dq = g · x · s · (1 - s),  dx = g · s   (either may be absent)
// over the broadcast shape of g. Operands: dq, dx, g, q, x.
template <class T>
__global__ void sigmoid_gate_backward_kernel(const T* g, const T* q, const T* x, T* dq, T* dx, int64_t n,
                                             bool dense, OffsetCalc<5> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[5] = {i, i, i, i, i};
    if (!dense) oc.get(i, off);
    const T gv = g[off[2]], s = emath::sigmoid(q[off[3]]);
    if (dq) dq[off[0]] = gv * x[off[4]] * s * (T(1) - s);
    if (dx) dx[off[1]] = gv * s;
  }
}

// y_i = keep_i · x_i · scale, keep_i = (u_i >= p), u_i = word (i mod 4) of philox(c0 + i / 4,
// seed) as a float32 uniform: exactly philox::uniform_f32_at(seed, c0, i), as ops/dropout.cpp.
// One thread per Philox block b (elements 4b .. 4b + 3). x, y contiguous.
template <class T>
__global__ void dropout_kernel(const T* x, T* y, int64_t n, uint64_t seed, uint64_t c0, float p, T scale) {
  AFT_KERNEL_LOOP(b, (n + 3) / 4) {
    const philox::Words w = philox::philox4x32(c0 + static_cast<uint64_t>(b), seed);
    const int64_t i0 = 4 * b, m = n - i0 < 4 ? n - i0 : 4;
    for (int64_t j = 0; j < m; ++j) y[i0 + j] = philox::uniform_f32(w.x[j]) >= p ? x[i0 + j] * scale : T(0);
  }
}

// Dense with exactly `shape`'s extents, or absent (data == nullptr).
bool dense_or_absent(const TensorDesc& shape, const TensorDesc& t) {
  const TensorDesc* one[1] = {&t};
  return t.data == nullptr || all_dense(shape, one);
}

}  // namespace

// y = sigmoid(q) · x; y has the broadcast shape, q and x broadcast to it.
void sigmoid_gate_forward(const TensorDesc& q, const TensorDesc& x, const TensorDesc& y) {
  const TensorDesc* ops[3] = {&y, &q, &x};
  const bool dense = all_dense(y, ops);
  const OffsetCalc<3> oc = make_offsets(y, ops);
  const int64_t n = y.numel();
  with_float_type(y.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(sigmoid_gate_kernel<T>, loop_blocks(n), kLoopThreads, 0, q.ptr<const T>(), x.ptr<const T>(),
               y.ptr<T>(), n, dense, oc);
  });
}

// dq, dx of g's shape (either absent: data == nullptr); x may be absent when dq is.
void sigmoid_gate_backward(const TensorDesc& g, const TensorDesc& q, const TensorDesc& x, const TensorDesc& dq,
                           const TensorDesc& dx) {
  const TensorDesc* ops[5] = {&dq, &dx, &g, &q, &x};
  bool dense = true;
  for (const TensorDesc* t : ops) dense = dense && dense_or_absent(g, *t);
  const OffsetCalc<5> oc = make_offsets(g, ops);
  const int64_t n = g.numel();
  with_float_type(g.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(sigmoid_gate_backward_kernel<T>, loop_blocks(n), kLoopThreads, 0, g.ptr<const T>(),
               q.ptr<const T>(), x.ptr<const T>(), dq.ptr<T>(), dx.ptr<T>(), n, dense, oc);
  });
}

// y = dropout mask of (seed, c0) applied to x, both contiguous; 0 < p < 1.
void dropout_apply(const TensorDesc& x, const TensorDesc& y, uint64_t seed, uint64_t c0, double p) {
  const int64_t n = x.numel();
  with_float_type(x.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(dropout_kernel<T>, loop_blocks((n + 3) / 4), kLoopThreads, 0, x.ptr<const T>(), y.ptr<T>(), n,
               seed, c0, static_cast<float>(p), static_cast<T>(1.0 / (1.0 - p)));
  });
}

}  // namespace aft::cuda
