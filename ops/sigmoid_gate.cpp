// ops/sigmoid_gate.cpp: y = sigmoid(q) · x, AFT's output gate, in one pass instead of two (no
// sigmoid(q) temporary). q and x broadcast against each other (NumPy rules); in AFT both are
// [B, T, D].
//
// Forward:  y = s · x with s = sigmoid(q) (the stable two-branch emath::sigmoid)
// Backward: dq = g · x · s · (1 - s),  dx = g · s   (s recomputed from q; both in one pass when
//           both are needed), then summed back over broadcast dims with sum_to.
// Saved: q (both gradients need s) and x only when dq is needed.
// CUDA tensors run cuda/nn_elementwise.cu (the same formulas, one thread per element, any
// strides and broadcasting); sum_to then reduces on the device.
#include "autograd/tape.h"
#include "core/math/elementwise.h"
#include "cuda/nn_elementwise.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

// dq_full, dx_full (either undefined when not needed) of the broadcast shape of g.
template <class T>
void backward_kernel(const Tensor& g, const Tensor& q, const Tensor& x, const Tensor& dq, const Tensor& dx) {
  const Shape& sh = g.shape();
  // Operands: dq, dx, g, q, x. An output that is not needed gets a null pointer and stride 0.
  std::array<char*, 5> base{dq.defined() ? static_cast<char*>(dq.raw_data()) : nullptr,
                            dx.defined() ? static_cast<char*>(dx.raw_data()) : nullptr,
                            static_cast<char*>(g.raw_data()), static_cast<char*>(q.raw_data()),
                            x.defined() ? static_cast<char*>(x.raw_data()) : nullptr};
  Strides zero = Shape::filled(sh.ndim(), 0);
  std::array<Strides, 5> st{dq.defined() ? byte_strides<T>(dq.strides()) : zero,
                            dx.defined() ? byte_strides<T>(dx.strides()) : zero,
                            byte_strides<T>(g.strides()), byte_strides<T>(broadcast_strides(q, sh)),
                            x.defined() ? byte_strides<T>(broadcast_strides(x, sh)) : zero};
  LoopPlan<5> plan = make_plan<5>(sh, st);
  cpu_loop<5>(plan, base, [](const std::array<char*, 5>& p, const std::array<int64_t, 5>& s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const T gv = *reinterpret_cast<const T*>(p[2] + i * s[2]);
      const T sv = emath::sigmoid(*reinterpret_cast<const T*>(p[3] + i * s[3]));
      if (p[0]) {
        const T xv = *reinterpret_cast<const T*>(p[4] + i * s[4]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) = gv * xv * sv * (T(1) - sv);
      }
      if (p[1]) *reinterpret_cast<T*>(p[1] + i * s[1]) = gv * sv;
    }
  });
}

}  // namespace

Tensor sigmoid_gate(const Tensor& q, const Tensor& x) {
  check_float_pair("sigmoid_gate", q, x);
  Shape shape = broadcast_shapes(q.shape(), x.shape(), "sigmoid_gate");
  Tensor y = empty(shape, {q.dtype(), q.device()});
  if (q.is_cuda()) {
    AFT_CUDA_CALL(cuda::sigmoid_gate_forward(desc(q), desc(x), desc(y)));
  } else {
    dispatch_float(q.dtype(), "sigmoid_gate", [&]<class T>() {
      cpu_map<T, T, T>(y, [](T qv, T xv) { return emath::sigmoid(qv) * xv; }, q, x);
    });
  }
  if (!autograd::needs_grad(q, x)) return y;
  const bool nq = autograd::needs_grad(q), nx = autograd::needs_grad(x);
  SavedTensor sq(q);
  SavedTensor sx = nq ? SavedTensor(x) : SavedTensor();
  Shape qs = q.shape(), xs = x.shape();
  autograd::record("sigmoid_gate", {q, x}, {y}, [=](const TensorList& g) {
    const Tensor& gv = g[0];
    Tensor dq = nq ? empty(gv.shape(), {gv.dtype(), gv.device()}) : Tensor();
    Tensor dx = nx ? empty(gv.shape(), {gv.dtype(), gv.device()}) : Tensor();
    if (gv.is_cuda()) {
      AFT_CUDA_CALL(cuda::sigmoid_gate_backward(desc(gv), desc(sq.get()), desc_or_null(nq ? sx.get() : Tensor()),
                                                desc_or_null(dq), desc_or_null(dx)));
    } else {
      dispatch_float(gv.dtype(), "sigmoid_gate", [&]<class T>() {
        backward_kernel<T>(gv, sq.get(), nq ? sx.get() : Tensor(), dq, dx);
      });
    }
    return TensorList{nq ? sum_to(dq, qs) : Tensor(), nx ? sum_to(dx, xs) : Tensor()};
  });
  return y;
}

}  // namespace aft
