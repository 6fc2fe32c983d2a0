// cuda/elementwise.cu: elementwise kernels: fill, unary forward/backward, binary forward,
// comparisons, where, and the strided converting copy.
//
// The scalar formulas are those of the CPU ops (ops/elementwise_math.h), so both backends
// compute the same thing. Every kernel is one thread per output element with a grid-stride
// loop (256 threads a block); operands may be broadcast and strided (cuda/offsets.h), with a
// dense fast path that indexes directly.
#include "cuda/kernel_common.h"
#include "cuda/offsets.h"
#include "ops/elementwise_math.h"

namespace aft::cuda {
namespace {

// out[i] = value (out dense)
template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  AFT_KERNEL_LOOP(i, n) out[i] = value;
}

// y = f(x)
template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* y, int64_t n, T p, bool dense,
                             OffsetCalc<2> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[2] = {i, i};
    if (!dense) oc.get(i, off);
    y[off[0]] = emath::unary_forward<T>(op, x[off[1]], p);
  }
}

// dx = g * f'(x)   (from_y: the saved tensor s is y = f(x) instead of x)
template <class T>
__global__ void unary_backward_kernel(UnaryOp op, const T* g, const T* s, T* dx, int64_t n,
                                      bool from_y, T p, bool dense, OffsetCalc<3> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[3] = {i, i, i};
    if (!dense) oc.get(i, off);
    T gv = g[off[1]], sv = s[off[2]];
    dx[off[0]] = from_y ? emath::unary_backward<T>(op, gv, T(0), sv, p)
                        : emath::unary_backward<T>(op, gv, sv, T(0), p);
  }
}

// out = a (op) b
template <class T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n, bool dense,
                              OffsetCalc<3> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[3] = {i, i, i};
    if (!dense) oc.get(i, off);
    out[off[0]] = emath::binary_forward<T>(op, a[off[1]], b[off[2]]);
  }
}

// out = a (cmp) b, cmp in eq, ne, lt, le, gt, ge (ops/compare.cpp's order)
template <class T>
__global__ void compare_kernel(int cmp, const T* a, const T* b, bool* out, int64_t n,
                               OffsetCalc<3> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[3];
    oc.get(i, off);
    T x = a[off[1]], y = b[off[2]];
    bool r = cmp == 0 ? x == y : cmp == 1 ? x != y : cmp == 2 ? x < y
           : cmp == 3 ? x <= y : cmp == 4 ? x > y : x >= y;
    out[off[0]] = r;
  }
}

// out = mask ? a : b
template <class T>
__global__ void where_kernel(const bool* mask, const T* a, const T* b, T* out, int64_t n,
                             OffsetCalc<4> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[4];
    oc.get(i, off);
    out[off[0]] = mask[off[1]] ? a[off[2]] : b[off[3]];
  }
}

// dst = convert(src), any strides, src broadcast to dst's shape
template <class D, class S>
__global__ void copy_kernel(D* dst, const S* src, int64_t n, OffsetCalc<2> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[2];
    oc.get(i, off);
    dst[off[0]] = static_cast<D>(src[off[1]]);
  }
}

}  // namespace

// value converted to the dtype as static_cast does (the CPU's fill_); any dtype of with_any_type.
void fill_contiguous(void* out, int64_t n, DType dtype, double value) {
  with_any_type(dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(fill_kernel<T>, loop_blocks(n), kLoopThreads, 0, static_cast<T*>(out), n, static_cast<T>(value));
  });
}

void copy(const TensorDesc& dst, const TensorDesc& src) {
  const TensorDesc* ops[2] = {&dst, &src};
  OffsetCalc<2> oc = make_offsets(dst, ops);
  int64_t n = dst.numel();
  with_any_type(dst.dtype, [&](auto dz) {
    with_any_type(src.dtype, [&](auto sz) {
      using D = decltype(dz);
      using S = decltype(sz);
      AFT_LAUNCH((copy_kernel<D, S>), loop_blocks(n), kLoopThreads, 0, dst.ptr<D>(), src.ptr<const S>(), n, oc);
    });
  });
}

void unary_forward(UnaryOp op, const TensorDesc& x, const TensorDesc& y, double p) {
  const TensorDesc* ops[2] = {&y, &x};
  bool dense = all_dense(y, ops);
  OffsetCalc<2> oc = make_offsets(y, ops);
  int64_t n = y.numel();
  with_float_type(y.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(unary_kernel<T>, loop_blocks(n), kLoopThreads, 0, op, x.ptr<const T>(), y.ptr<T>(), n,
               static_cast<T>(p), dense, oc);
  });
}

void unary_backward(UnaryOp op, const TensorDesc& g, const TensorDesc& s, const TensorDesc& dx,
                    bool from_y, double p) {
  const TensorDesc* ops[3] = {&dx, &g, &s};
  bool dense = all_dense(dx, ops);
  OffsetCalc<3> oc = make_offsets(dx, ops);
  int64_t n = dx.numel();
  with_float_type(dx.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(unary_backward_kernel<T>, loop_blocks(n), kLoopThreads, 0, op, g.ptr<const T>(),
               s.ptr<const T>(), dx.ptr<T>(), n, from_y, static_cast<T>(p), dense, oc);
  });
}

void binary_forward(BinaryOp op, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out) {
  const TensorDesc* ops[3] = {&out, &a, &b};
  bool dense = all_dense(out, ops);
  OffsetCalc<3> oc = make_offsets(out, ops);
  int64_t n = out.numel();
  with_float_type(out.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(binary_kernel<T>, loop_blocks(n), kLoopThreads, 0, op, a.ptr<const T>(), b.ptr<const T>(),
               out.ptr<T>(), n, dense, oc);
  });
}

void compare(int cmp, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out) {
  const TensorDesc* ops[3] = {&out, &a, &b};
  OffsetCalc<3> oc = make_offsets(out, ops);
  int64_t n = out.numel();
  with_float_type(a.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(compare_kernel<T>, loop_blocks(n), kLoopThreads, 0, cmp, a.ptr<const T>(),
               b.ptr<const T>(), out.ptr<bool>(), n, oc);
  });
}

void where(const TensorDesc& mask, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out) {
  const TensorDesc* ops[4] = {&out, &mask, &a, &b};
  OffsetCalc<4> oc = make_offsets(out, ops);
  int64_t n = out.numel();
  with_float_type(out.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(where_kernel<T>, loop_blocks(n), kLoopThreads, 0, mask.ptr<const bool>(), a.ptr<const T>(),
               b.ptr<const T>(), out.ptr<T>(), n, oc);
  });
}

}  // namespace aft::cuda
