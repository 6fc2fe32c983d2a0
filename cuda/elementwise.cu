// cuda/elementwise.cu: elementwise kernels: fill, unary forward/backward, binary forward,
// comparisons, where, and the strided converting copy.
//
// The scalar formulas are those of the CPU ops (core/math/elementwise.h), so both backends
// compute the same thing. Every kernel is one thread per output element with a grid-stride
// loop (256 threads a block); operands may be broadcast and strided (cuda/offsets.h), with a
// dense fast path that indexes directly. Unary forward/backward and binary forward have a
// second fast path when every operand is dense and 16-byte aligned: each thread moves one
// 16-byte vector (float4 or double2) per operand and applies the scalar formula to its lanes.
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "core/math/elementwise.h"
#include "cuda/elementwise.h"
#include "cuda/kernel_common.h"
#include "cuda/offsets.h"

namespace aft::cuda {
namespace {

// The per-element formulas, shared by the strided and the vectorised kernels.
// y = f(x)
template <class T>
struct UnaryFwd {
  UnaryOp op;
  T p;
  __device__ T operator()(T x) const { return emath::unary_forward<T>(op, x, p); }
};
// dx = g * f'(x)   (from_y: the saved tensor s is y = f(x) instead of x)
template <class T>
struct UnaryBwd {
  UnaryOp op;
  bool from_y;
  T p;
  __device__ T operator()(T g, T s) const {
    return from_y ? emath::unary_backward<T>(op, g, T(0), s, p)
                  : emath::unary_backward<T>(op, g, s, T(0), p);
  }
};
// out = a (op) b
template <class T>
struct BinaryFwd {
  BinaryOp op;
  __device__ T operator()(T a, T b) const { return emath::binary_forward<T>(op, a, b); }
};

// The 16-byte vector of T (one 128-bit load or store) and its lanes as an array.
template <class T> struct Vec16;
template <> struct Vec16<float> { using type = float4; };
template <> struct Vec16<double> { using type = double2; };
template <class T>
constexpr int kLanes = static_cast<int>(16 / sizeof(T));
template <class T>
struct Lanes {
  T v[kLanes<T>];
};
template <class T>
__device__ inline Lanes<T> load16(const T* p) {
  const typename Vec16<T>::type q = *reinterpret_cast<const typename Vec16<T>::type*>(p);
  Lanes<T> r;
  memcpy(&r, &q, 16);
  return r;
}
template <class T>
__device__ inline void store16(T* p, const Lanes<T>& r) {
  typename Vec16<T>::type q;
  memcpy(&q, &r, 16);
  *reinterpret_cast<typename Vec16<T>::type*>(p) = q;
}

// out[i] = f(in_0[i], ..., in_{N-1}[i]), all dense with n elements, every pointer 16-byte
// aligned (checked by the launcher, can_vectorise). Vector v covers elements
// [v L, v L + L), L = 16 / sizeof(T) (4 floats, 2 doubles): one vector load per input and one
// vector store per thread and step. The n % L tail elements [n - n % L, n) are done one
// element per thread by the first threads of the grid.
template <class T, class F, int N>
__global__ void vec_kernel(F f, T* out, const T* in0, const T* in1, int64_t n) {
  constexpr int L = kLanes<T>;
  const int64_t nv = n / L;
  AFT_KERNEL_LOOP(v, nv) {
    const Lanes<T> a = load16(in0 + v * L);
    Lanes<T> r;
    if constexpr (N == 1) {
#pragma unroll
      for (int k = 0; k < L; ++k) r.v[k] = f(a.v[k]);
    } else {
      const Lanes<T> b = load16(in1 + v * L);
#pragma unroll
      for (int k = 0; k < L; ++k) r.v[k] = f(a.v[k], b.v[k]);
    }
    store16(out + v * L, r);
  }
  AFT_KERNEL_LOOP(t, n - nv * L) {
    const int64_t i = nv * L + t;
    if constexpr (N == 1) out[i] = f(in0[i]);
    else out[i] = f(in0[i], in1[i]);
  }
}

// True when the operands are dense and each pointer sits on a 16-byte boundary (a view such as
// x.narrow(0, 1, n - 1) is dense but 4 or 8 bytes off, and takes the strided kernel).
inline bool can_vectorise(bool dense, std::initializer_list<const void*> ptrs) {
  if (!dense) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// Blocks of vec_kernel: one thread per vector (at least one per tail element).
template <class T>
unsigned vec_blocks(int64_t n) {
  const int64_t nv = n / kLanes<T>, tail = n % kLanes<T>;
  return loop_blocks(nv > tail ? nv : tail);
}

// out[i] = value (out dense)
template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  AFT_KERNEL_LOOP(i, n) out[i] = value;
}

// y = f(x)   (f: UnaryFwd)
template <class T>
__global__ void unary_kernel(UnaryFwd<T> f, const T* x, T* y, int64_t n, bool dense,
                             OffsetCalc<2> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[2] = {i, i};
    if (!dense) oc.get(i, off);
    y[off[0]] = f(x[off[1]]);
  }
}

// dx = g * f'(x), or g * f'(y) from the saved output   (f: UnaryBwd)
template <class T>
__global__ void unary_backward_kernel(UnaryBwd<T> f, const T* g, const T* s, T* dx, int64_t n,
                                      bool dense, OffsetCalc<3> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[3] = {i, i, i};
    if (!dense) oc.get(i, off);
    dx[off[0]] = f(g[off[1]], s[off[2]]);
  }
}

// out = a (op) b   (f: BinaryFwd)
template <class T>
__global__ void binary_kernel(BinaryFwd<T> f, const T* a, const T* b, T* out, int64_t n, bool dense,
                              OffsetCalc<3> oc) {
  AFT_KERNEL_LOOP(i, n) {
    int64_t off[3] = {i, i, i};
    if (!dense) oc.get(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
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
    const UnaryFwd<T> f{op, static_cast<T>(p)};
    if (can_vectorise(dense, {x.ptr<const T>(), y.ptr<T>()}))
      AFT_LAUNCH((vec_kernel<T, UnaryFwd<T>, 1>), vec_blocks<T>(n), kLoopThreads, 0, f, y.ptr<T>(),
                 x.ptr<const T>(), nullptr, n);
    else
      AFT_LAUNCH(unary_kernel<T>, loop_blocks(n), kLoopThreads, 0, f, x.ptr<const T>(), y.ptr<T>(),
                 n, dense, oc);
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
    const UnaryBwd<T> f{op, from_y, static_cast<T>(p)};
    if (can_vectorise(dense, {g.ptr<const T>(), s.ptr<const T>(), dx.ptr<T>()}))
      AFT_LAUNCH((vec_kernel<T, UnaryBwd<T>, 2>), vec_blocks<T>(n), kLoopThreads, 0, f, dx.ptr<T>(),
                 g.ptr<const T>(), s.ptr<const T>(), n);
    else
      AFT_LAUNCH(unary_backward_kernel<T>, loop_blocks(n), kLoopThreads, 0, f, g.ptr<const T>(),
                 s.ptr<const T>(), dx.ptr<T>(), n, dense, oc);
  });
}

void binary_forward(BinaryOp op, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out) {
  const TensorDesc* ops[3] = {&out, &a, &b};
  bool dense = all_dense(out, ops);
  OffsetCalc<3> oc = make_offsets(out, ops);
  int64_t n = out.numel();
  with_float_type(out.dtype, [&](auto z) {
    using T = decltype(z);
    const BinaryFwd<T> f{op};
    if (can_vectorise(dense, {a.ptr<const T>(), b.ptr<const T>(), out.ptr<T>()}))
      AFT_LAUNCH((vec_kernel<T, BinaryFwd<T>, 2>), vec_blocks<T>(n), kLoopThreads, 0, f,
                 out.ptr<T>(), a.ptr<const T>(), b.ptr<const T>(), n);
    else
      AFT_LAUNCH(binary_kernel<T>, loop_blocks(n), kLoopThreads, 0, f, a.ptr<const T>(),
                 b.ptr<const T>(), out.ptr<T>(), n, dense, oc);
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
