// core/math/optim.h: the per-element update rules of the optimizers, written once for the CPU
// loops (nn/optim/optim.cpp) and the fused CUDA kernels (cuda/optim.cu), and the plain-data list of
// parameters that the CUDA launchers take. Header-only and free of library headers beyond
// core/philox.h (AFT_HD) and core/dtype.h, so that nvcc compiles it too.
//
// Every coefficient is computed once per step (per parameter group) on the host in double and
// rounded to the parameter's type T; the element math then runs in T, as PyTorch's own loops
// do. Both backends evaluate the same expressions in the same order, but compilers may fuse
// a·b + c into an fma (nvcc does; so does g++ at -march=native, differently in the CPU's
// vectorised loop and in the emulator's scalar kernel), so CUDA results are within a few ulp
// of the CPU's. Each CPU element is computed alone, so its bits do not depend on the thread
// count (tests/test_optim.cpp checks this).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/philox.h"  // AFT_HD

namespace aft::optim_math {

// ---- AdamW (Loshchilov & Hutter), step t >= 1, for one element:
//   p = p·(1 - lr·wd)                         decoupled weight decay
//   m = b1·m + (1-b1)·g                       first moment
//   v = b2·v + (1-b2)·g²                      second moment
//   p = p - (lr / (1-b1^t)) · m / (sqrt(v) / sqrt(1-b2^t) + eps)
// (the last line is lr·m̂/(sqrt(v̂)+eps) with m̂ = m/(1-b1^t), v̂ = v/(1-b2^t), arranged as in
// PyTorch so that no v̂ is formed.)
template <class T>
struct AdamWCoef {
  T decay;      // 1 - lr·wd   (per parameter group)
  T step_size;  // lr / (1 - b1^t)   (per parameter group)
  T b1, one_minus_b1, b2, one_minus_b2;
  T bc2_sqrt;  // sqrt(1 - b2^t)
  T eps;
};

template <class T>
AFT_HD inline void adamw_update(T& p, T g, T& m, T& v, const AdamWCoef<T>& c) {
  T pp = p * c.decay;
  T mm = c.b1 * m + c.one_minus_b1 * g;
  T vv = c.b2 * v + c.one_minus_b2 * (g * g);
  T denom = std::sqrt(vv) / c.bc2_sqrt + c.eps;
  p = pp - c.step_size * (mm / denom);
  m = mm;
  v = vv;
}

// ---- SGD with L2 weight decay and (Nesterov) momentum (PyTorch's torch.optim.SGD, no
// dampening), for one element:
//   d = g + wd·p
//   v = mu·v + d                (only with momentum; the first step starts from v = 0, so v = d)
//   d = nesterov ? d + mu·v : v
//   p = p - lr·d
template <class T>
AFT_HD inline void sgd_update(T& p, T g, T* v, T wd, T lr, T mu, bool nesterov) {
  T d = g + wd * p;
  if (v) {
    T vv = mu * *v + d;
    *v = vv;
    d = nesterov ? d + mu * vv : vv;
  }
  p = p - lr * d;
}

// ---- the CUDA side's view of a parameter list (cuda/optim.cu)
// One parameter: its data, gradient and up to two state buffers (AdamW: m, v; SGD: the
// momentum buffer or null), all dense, n elements of the same dtype on the same device, and
// two per-group coefficients (AdamW: decay, step_size; SGD: wd, lr).
struct ParamSlot {
  void* p = nullptr;
  const void* g = nullptr;
  void* s1 = nullptr;
  void* s2 = nullptr;
  int64_t n = 0;
  double c0 = 0, c1 = 0;
};

// Elements one CUDA block updates (or reduces): a tensor of n elements takes
// ceil(n / kChunk) blocks of a multi-tensor launch.
inline constexpr int64_t kChunk = 8192;

inline int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

}  // namespace aft::optim_math
