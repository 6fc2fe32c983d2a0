// ops/unary.cpp: neg, exp, log, sqrt, rsqrt, abs, tanh, sigmoid, relu, gelu, pow.
//
// Forward: y = f(x); backward: dx = g * f'(x). Both formulas live in core/math/elementwise.h,
// shared with the CUDA kernels; this file holds the op entry points, what each saves for
// backward (x or y, whichever the derivative needs), and the CPU loops.
#include "autograd/tape.h"
#include "core/math/elementwise.h"
#include "cuda/elementwise.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Rsqrt: return "rsqrt";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::GeluErf: return "gelu";
    case UnaryOp::GeluTanh: return "gelu_tanh";
    case UnaryOp::Pow: return "pow";
  }
  return "unary";
}

// Calls f.template operator()<OP>() with OP a compile-time constant, so the switch inside the
// scalar formula folds away and the loop vectorises.
template <class F>
void with_op(UnaryOp op, F&& f) {
  switch (op) {
#define AFT_CASE(name) case UnaryOp::name: f.template operator()<UnaryOp::name>(); break;
    AFT_CASE(Neg) AFT_CASE(Exp) AFT_CASE(Log) AFT_CASE(Sqrt) AFT_CASE(Rsqrt) AFT_CASE(Abs)
    AFT_CASE(Tanh) AFT_CASE(Sigmoid) AFT_CASE(Relu) AFT_CASE(GeluErf) AFT_CASE(GeluTanh) AFT_CASE(Pow)
#undef AFT_CASE
  }
}

// Whether f'(x) is computed from y (true) or from x.
bool backward_uses_y(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt ||
         op == UnaryOp::Tanh || op == UnaryOp::Sigmoid;
}

Tensor unary_forward(UnaryOp op, const Tensor& x, double p) {
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  if (x.is_cuda()) {
    AFT_CUDA_CALL(cuda::unary_forward(op, desc(x), desc(y), p));
    return y;
  }
  dispatch_float(x.dtype(), unary_name(op), [&]<class T>() {
    T pt = static_cast<T>(p);
    with_op(op, [&]<UnaryOp OP>() {
      cpu_map<T, T>(y, [pt](T v) { return emath::unary_forward<T>(OP, v, pt); }, x);
    });
  });
  return y;
}

// dx = g * f'(x); x or y may be undefined when the formula does not read it.
Tensor unary_backward(UnaryOp op, const Tensor& g, const Tensor& x, const Tensor& y, double p) {
  const Tensor& ref = x.defined() ? x : y;
  Tensor dx = empty(ref.shape(), {ref.dtype(), ref.device()});
  if (g.is_cuda()) {
    AFT_CUDA_CALL(cuda::unary_backward(op, desc(g), desc(x.defined() ? x : y), desc(dx), !x.defined(), p));
    return dx;
  }
  dispatch_float(g.dtype(), unary_name(op), [&]<class T>() {
    T pt = static_cast<T>(p);
    with_op(op, [&]<UnaryOp OP>() {
      if (x.defined())
        cpu_map<T, T, T>(dx, [pt](T gv, T xv) { return emath::unary_backward<T>(OP, gv, xv, T(0), pt); }, g, x);
      else
        cpu_map<T, T, T>(dx, [pt](T gv, T yv) { return emath::unary_backward<T>(OP, gv, T(0), yv, pt); }, g, y);
    });
  });
  return dx;
}

Tensor unary(UnaryOp op, const Tensor& x, double p = 0.0) {
  check_float(unary_name(op), x);
  Tensor y = unary_forward(op, x, p);
  if (autograd::needs_grad(x)) {
    autograd::SavedTensor saved = backward_uses_y(op) ? autograd::SavedTensor(y) : autograd::SavedTensor(x);
    bool uses_y = backward_uses_y(op);
    autograd::record(unary_name(op), {x}, {y}, [op, p, saved, uses_y](const autograd::TensorList& g) {
      const Tensor& s = saved.get();
      return autograd::TensorList{uses_y ? unary_backward(op, g[0], Tensor(), s, p)
                                         : unary_backward(op, g[0], s, Tensor(), p)};
    });
  }
  return y;
}

}  // namespace

Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return unary(approx == GeluApprox::Tanh ? UnaryOp::GeluTanh : UnaryOp::GeluErf, x);
}
Tensor pow(const Tensor& x, double exponent) { return unary(UnaryOp::Pow, x, exponent); }
Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace aft
