// ops/binary.cpp: add, sub, mul, div, maximum, minimum (tensor-tensor with NumPy broadcasting,
// and tensor-scalar), and the arithmetic operators.
//
// Backward, with g the upstream gradient and sum_to() folding broadcast dims back:
//   add: da = g, db = g          sub: da = g, db = -g
//   mul: da = g·b, db = g·a      div: da = g/b, db = -da·(a/b)
//   maximum: da = g where a >= b, db = g elsewhere (minimum likewise with <=)
// Each operand is saved only when the other operand's gradient needs it.
#include "autograd/tape.h"
#include "core/math/elementwise.h"
#include "cuda/elementwise.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Max: return "maximum";
    case BinaryOp::Min: return "minimum";
  }
  return "binary";
}

template <class F>
void with_op(BinaryOp op, F&& f) {
  switch (op) {
#define AFT_CASE(name) case BinaryOp::name: f.template operator()<BinaryOp::name>(); break;
    AFT_CASE(Add) AFT_CASE(Sub) AFT_CASE(Mul) AFT_CASE(Div) AFT_CASE(Max) AFT_CASE(Min)
#undef AFT_CASE
  }
}

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), binary_name(op));
  Tensor out = empty(shape, {a.dtype(), a.device()});
  if (a.is_cuda()) {
    AFT_CUDA_CALL(cuda::binary_forward(op, desc(a), desc(b), desc(out)));
    return out;
  }
  dispatch_float(a.dtype(), binary_name(op), [&]<class T>() {
    with_op(op, [&]<BinaryOp OP>() {
      cpu_map<T, T, T>(out, [](T x, T y) { return emath::binary_forward<T>(OP, x, y); }, a, b);
    });
  });
  return out;
}

// out = a (op) s, or s (op) a when reversed.
Tensor scalar_forward(BinaryOp op, const Tensor& a, double s, bool reversed) {
  if (a.is_cuda()) {  // the CUDA binary kernel broadcasts a 0-d operand (stride 0)
    Tensor st = full(Shape{}, s, {a.dtype(), a.device()});
    return reversed ? binary_forward(op, st, a) : binary_forward(op, a, st);
  }
  Tensor out = empty(a.shape(), {a.dtype(), a.device()});
  dispatch_float(a.dtype(), binary_name(op), [&]<class T>() {
    T c = static_cast<T>(s);
    with_op(op, [&]<BinaryOp OP>() {
      if (reversed)
        cpu_map<T, T>(out, [c](T x) { return emath::binary_forward<T>(OP, c, x); }, a);
      else
        cpu_map<T, T>(out, [c](T x) { return emath::binary_forward<T>(OP, x, c); }, a);
    });
  });
  return out;
}

// g where keep(a, b), else 0: the gradient routing of maximum/minimum.
Tensor select_grad(const Tensor& g, const Tensor& a, const Tensor& b, bool want_a, bool is_max) {
  if (g.is_cuda()) {  // the same selection from the comparison kernels: a wins where a is NaN or >= b
    const Tensor zero = zeros(Shape{}, {g.dtype(), g.device()});
    const Tensor a_wins = is_max ? ge(a, b) : le(a, b), a_nan = ne(a, a);
    return want_a ? where(a_nan, g, where(a_wins, g, zero)) : where(a_nan, zero, where(a_wins, zero, g));
  }
  Tensor ab_a = a.expand(g.shape()), ab_b = b.expand(g.shape());
  Tensor out = empty(g.shape(), {g.dtype(), g.device()});
  dispatch_float(g.dtype(), "maximum", [&]<class T>() {
    cpu_map<T, T, T, T>(out, [want_a, is_max](T gv, T x, T y) {
      bool a_wins = is_max ? (x != x || x >= y) : (x != x || x <= y);
      return a_wins == want_a ? gv : T(0);
    }, g, ab_a, ab_b);
  });
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_float_pair(name, a, b);
  Tensor out = binary_forward(op, a, b);
  if (!autograd::needs_grad(a, b)) return out;
  bool na = autograd::needs_grad(a), nb = autograd::needs_grad(b);
  Shape sa = a.shape(), sb = b.shape();
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Sub:
      autograd::record(name, {a, b}, {out}, [=](const TensorList& g) {
        return TensorList{na ? sum_to(g[0], sa) : Tensor(),
                          nb ? sum_to(op == BinaryOp::Add ? g[0] : neg(g[0]), sb) : Tensor()};
      });
      break;
    case BinaryOp::Mul: {
      SavedTensor save_a = nb ? SavedTensor(a) : SavedTensor();
      SavedTensor save_b = na ? SavedTensor(b) : SavedTensor();
      autograd::record(name, {a, b}, {out}, [=](const TensorList& g) {
        return TensorList{na ? sum_to(mul(g[0], save_b.get()), sa) : Tensor(),
                          nb ? sum_to(mul(g[0], save_a.get()), sb) : Tensor()};
      });
      break;
    }
    case BinaryOp::Div: {
      SavedTensor save_b(b);
      SavedTensor save_out = nb ? SavedTensor(out) : SavedTensor();
      autograd::record(name, {a, b}, {out}, [=](const TensorList& g) {
        Tensor ga = div(g[0], save_b.get());  // g / b, also the start of db
        return TensorList{na ? sum_to(ga, sa) : Tensor(),
                          nb ? sum_to(neg(mul(ga, save_out.get())), sb) : Tensor()};
      });
      break;
    }
    case BinaryOp::Max:
    case BinaryOp::Min: {
      SavedTensor save_a(a), save_b(b);
      bool is_max = op == BinaryOp::Max;
      autograd::record(name, {a, b}, {out}, [=](const TensorList& g) {
        const Tensor& x = save_a.get();
        const Tensor& y = save_b.get();
        return TensorList{na ? sum_to(select_grad(g[0], x, y, true, is_max), sa) : Tensor(),
                          nb ? sum_to(select_grad(g[0], x, y, false, is_max), sb) : Tensor()};
      });
      break;
    }
  }
  return out;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, double s, bool reversed) {
  const char* name = binary_name(op);
  check_float(name, a);
  Tensor out = scalar_forward(op, a, s, reversed);
  if (!autograd::needs_grad(a)) return out;
  switch (op) {
    case BinaryOp::Add:
      autograd::record(name, {a}, {out}, [](const TensorList& g) { return TensorList{g[0]}; });
      break;
    case BinaryOp::Sub:
      autograd::record(name, {a}, {out}, [reversed](const TensorList& g) {
        return TensorList{reversed ? neg(g[0]) : g[0]};
      });
      break;
    case BinaryOp::Mul:
      autograd::record(name, {a}, {out}, [s](const TensorList& g) { return TensorList{mul(g[0], s)}; });
      break;
    case BinaryOp::Div:
      if (!reversed) {
        autograd::record(name, {a}, {out}, [s](const TensorList& g) { return TensorList{div(g[0], s)}; });
      } else {  // d(s/a)/da = -s/a^2 = -out/a
        SavedTensor save_a(a), save_out(out);
        autograd::record(name, {a}, {out}, [save_a, save_out](const TensorList& g) {
          return TensorList{neg(div(mul(g[0], save_out.get()), save_a.get()))};
        });
      }
      break;
    default:
      AFT_ASSERT(false);
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Max, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Min, a, b); }

Tensor add(const Tensor& a, double b) { return binary_scalar(BinaryOp::Add, a, b, false); }
Tensor sub(const Tensor& a, double b) { return binary_scalar(BinaryOp::Sub, a, b, false); }
Tensor sub(double a, const Tensor& b) { return binary_scalar(BinaryOp::Sub, b, a, true); }
Tensor mul(const Tensor& a, double b) { return binary_scalar(BinaryOp::Mul, a, b, false); }
Tensor div(const Tensor& a, double b) { return binary_scalar(BinaryOp::Div, a, b, false); }
Tensor div(double a, const Tensor& b) { return binary_scalar(BinaryOp::Div, b, a, true); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator-(double a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator/(double a, const Tensor& b) { return div(a, b); }

}  // namespace aft
