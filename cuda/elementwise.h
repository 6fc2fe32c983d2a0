// cuda/elementwise.h: the launchers of cuda/elementwise.cu (fill, unary, binary, comparisons,
// where, the strided converting copy), called by ops/unary.cpp, binary.cpp, compare.cpp,
// copy.cpp and shape_ops.cpp. The scalar formulas are core/math/elementwise.h.
#pragma once

#include <cstdint>

#include "core/math/elementwise.h"
#include "cuda/desc.h"

namespace aft::cuda {

// out[i] = value for n contiguous elements of `dtype` (any dtype).
void fill_contiguous(void* out, int64_t n, DType dtype, double value);
// dst = src, elementwise over dst's shape (src broadcast to it), converting the dtype.
void copy(const TensorDesc& dst, const TensorDesc& src);

// y = op(x); p is the exponent of Pow.
void unary_forward(UnaryOp op, const TensorDesc& x, const TensorDesc& y, double p);
// dx = g · op'(·), from the input x (from_y false) or the output y (from_y true).
void unary_backward(UnaryOp op, const TensorDesc& g, const TensorDesc& xy, const TensorDesc& dx, bool from_y,
                    double p);
// out = a (op) b, a and b broadcast to out's shape.
void binary_forward(BinaryOp op, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out);

// out (bool) = a (cmp) b, broadcast; op: 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge (ops/compare.cpp).
void compare(int op, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out);
// out = mask ? a : b, broadcast.
void where(const TensorDesc& mask, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out);

}  // namespace aft::cuda
