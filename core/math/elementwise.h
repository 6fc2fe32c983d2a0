// core/math/elementwise.h: the scalar formulas of the elementwise ops, forward and derivative,
// written once and used by both the CPU loops (ops/unary.cpp, ops/binary.cpp) and the CUDA
// kernels (cuda/elementwise.cu). Header-only, no library dependencies, so nvcc compiles it too.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/philox.h"  // AFT_HD
#include "core/math/fast_math.h"

namespace aft {

enum class UnaryOp : uint8_t { Neg, Exp, Log, Sqrt, Rsqrt, Abs, Tanh, Sigmoid, Relu, GeluErf, GeluTanh, Pow };
enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Max, Min };

namespace emath {

// exp and tanh: on the host in float32 the vectorisable core/math/fast_math.h versions (the CPU
// loops, and the kernels when the SIMT emulator runs them); on a GPU and in float64 the
// library's.
template <class T>
AFT_HD inline T exp_(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) return fastm::fast_exp(x);
#endif
  return std::exp(x);
}
template <class T>
AFT_HD inline T tanh_(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) return fastm::fast_tanh(x);
#endif
  return std::tanh(x);
}

template <class T>
AFT_HD inline T sigmoid(T x) {
  // Two branches so exp never overflows: for x < 0 use e^x / (1 + e^x).
  // e = e^{-|x|} never overflows; sigmoid(-|x|) = e / (1 + e).
  T e = exp_(x < 0 ? x : -x);
  T r = T(1) / (T(1) + e);
  return x >= 0 ? r : e * r;
}

template <class T>
AFT_HD inline T gelu_tanh_inner(T x) {  // sqrt(2/pi) * (x + 0.044715 x^3)
  return T(0.7978845608028654) * (x + T(0.044715) * x * x * x);
}

// y = f(x). `p` is the exponent of Pow and unused otherwise.
template <class T>
AFT_HD inline T unary_forward(UnaryOp op, T x, T p) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return exp_(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Tanh: return tanh_(x);
    case UnaryOp::Sigmoid: return sigmoid(x);
    case UnaryOp::Relu: return x < T(0) ? T(0) : x;  // NaN propagates, as in PyTorch
    // (x < -big: exactly 0, also for x = -inf where x * 0 would give NaN)
    case UnaryOp::GeluErf:
      return x < T(-40) ? T(0) : T(0.5) * x * (T(1) + std::erf(x * T(0.7071067811865476)));
    case UnaryOp::GeluTanh:
      return x < T(-40) ? T(0) : T(0.5) * x * (T(1) + tanh_(gelu_tanh_inner(x)));
    case UnaryOp::Pow: return std::pow(x, p);
  }
  return x;
}

// dL/dx = g * f'(x), written with whichever of x and y = f(x) is cheaper.
template <class T>
AFT_HD inline T unary_backward(UnaryOp op, T g, T x, T y, T p) {
  switch (op) {
    case UnaryOp::Neg: return -g;
    case UnaryOp::Exp: return g * y;
    case UnaryOp::Log: return g / x;
    case UnaryOp::Sqrt: return g * T(0.5) / y;
    case UnaryOp::Rsqrt: return g * T(-0.5) * y * y * y;
    case UnaryOp::Abs: return x > T(0) ? g : (x < T(0) ? -g : T(0));
    case UnaryOp::Tanh: return g * (T(1) - y * y);
    case UnaryOp::Sigmoid: return g * y * (T(1) - y);
    case UnaryOp::Relu: return x > T(0) ? g : T(0);
    case UnaryOp::GeluErf: {
      if (x < T(-40)) return T(0);
      T cdf = T(0.5) * (T(1) + std::erf(x * T(0.7071067811865476)));
      T pdf = exp_(T(-0.5) * x * x) * T(0.3989422804014327);  // 1/sqrt(2 pi)
      return g * (cdf + x * pdf);
    }
    case UnaryOp::GeluTanh: {
      if (x < T(-40)) return T(0);
      T t = tanh_(gelu_tanh_inner(x));
      T du = T(0.7978845608028654) * (T(1) + T(3 * 0.044715) * x * x);
      return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }
    case UnaryOp::Pow:
      return p == T(0) ? T(0) : g * p * std::pow(x, p - T(1));
  }
  return g;
}

template <class T>
AFT_HD inline T binary_forward(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    // NaN propagates, as in NumPy's maximum/minimum.
    case BinaryOp::Max: return (a != a || a >= b) ? a : b;
    case BinaryOp::Min: return (a != a || a <= b) ? a : b;
  }
  return a;
}

}  // namespace emath
}  // namespace aft
