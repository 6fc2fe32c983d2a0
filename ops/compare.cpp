// ops/compare.cpp: comparisons (eq, ne, lt, le, gt, ge) returning bool masks, and
// where(mask, a, b). Comparisons have no gradient; where routes g to a where the mask is
// true and to b elsewhere (then sums broadcast dims back).
#include "autograd/tape.h"
#include "cuda/elementwise.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

enum class Cmp { Eq, Ne, Lt, Le, Gt, Ge };

const char* cmp_name(Cmp c) {
  static const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  return names[static_cast<int>(c)];
}

template <class T>
bool apply(Cmp c, T x, T y) {
  switch (c) {
    case Cmp::Eq: return x == y;
    case Cmp::Ne: return x != y;
    case Cmp::Lt: return x < y;
    case Cmp::Le: return x <= y;
    case Cmp::Gt: return x > y;
    case Cmp::Ge: return x >= y;
  }
  return false;
}

Tensor compare(Cmp c, const Tensor& a, const Tensor& b) {
  const char* name = cmp_name(c);
  check_defined(name, a);
  check_defined(name, b);
  check_same_dtype(name, a, b);
  check_same_device(name, a, b);
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), name), {kBool, a.device()});
  if (a.is_cuda()) {
    AFT_CUDA_CALL(cuda::compare(static_cast<int>(c), desc(a), desc(b), desc(out)));
    return out;
  }
  dispatch_all(a.dtype(), name, [&]<class T>() {
    cpu_map<bool, T, T>(out, [c](T x, T y) { return apply<T>(c, x, y); }, a, b);
  });
  return out;
}

Tensor compare_scalar(Cmp c, const Tensor& a, double s) {
  check_defined(cmp_name(c), a);
  return compare(c, a, full(Shape{}, s, {a.dtype(), a.device()}));
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(Cmp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(Cmp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(Cmp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(Cmp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(Cmp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(Cmp::Ge, a, b); }
Tensor eq(const Tensor& a, double b) { return compare_scalar(Cmp::Eq, a, b); }
Tensor ne(const Tensor& a, double b) { return compare_scalar(Cmp::Ne, a, b); }
Tensor lt(const Tensor& a, double b) { return compare_scalar(Cmp::Lt, a, b); }
Tensor le(const Tensor& a, double b) { return compare_scalar(Cmp::Le, a, b); }
Tensor gt(const Tensor& a, double b) { return compare_scalar(Cmp::Gt, a, b); }
Tensor ge(const Tensor& a, double b) { return compare_scalar(Cmp::Ge, a, b); }

Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  check_defined("where", mask, "mask");
  AFT_CHECK(mask.dtype() == kBool, "where: mask must be a bool tensor, got {} of shape {}",
            mask.dtype(), mask.shape());
  check_defined("where", a);
  check_defined("where", b);
  check_same_dtype("where", a, b);
  check_same_device("where", a, b);
  check_same_device("where", mask, a);
  Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, {a.dtype(), a.device()});
  if (a.is_cuda()) {
    AFT_CUDA_CALL(cuda::where(desc(mask), desc(a), desc(b), desc(out)));
  } else {
    dispatch_all(a.dtype(), "where", [&]<class T>() {
      cpu_map<T, bool, T, T>(out, [](bool m, T x, T y) { return m ? x : y; }, mask, a, b);
    });
  }
  if (autograd::needs_grad(a, b)) {
    bool na = autograd::needs_grad(a), nb = autograd::needs_grad(b);
    Shape sa = a.shape(), sb = b.shape();
    Tensor m = mask.detach();
    autograd::record("where", {a, b}, {out}, [=](const autograd::TensorList& g) {
      Tensor z = zeros(Shape{}, {g[0].dtype(), g[0].device()});
      return autograd::TensorList{na ? sum_to(where(m, g[0], z), sa) : Tensor(),
                                  nb ? sum_to(where(m, z, g[0]), sb) : Tensor()};
    });
  }
  return out;
}

}  // namespace aft
