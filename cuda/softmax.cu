// cuda/softmax.cu: softmax and log_softmax along any dim, forward and backward, with the
// formulas of ops/softmax.cpp.
//
// x (made contiguous by the op) is viewed as [O, N, I] around the softmax dim, as on the CPU;
// a lane (o, i) is one softmax over N elements spaced I apart. Two thread mappings:
//   I = 1 (the last dim, the usual case): a row kernel (cuda/row_reduce.h): one warp per row
//     when N <= 1024 (shuffles only), one block per row above. One read of the row gives the
//     online (max, sum), a second read writes y: 2 reads and 1 write of the row in all.
//   I > 1 (an inner dim): one thread per lane, walking its N elements; neighbouring threads
//     take neighbouring i, so every step of the walk is a coalesced load, and there are O·I
//     lanes to keep the GPU busy, no reduction across threads needed.
// exp is the full-precision std::exp in T (expf: 2 ulp; no __expf), sums accumulate in double
// and log is taken of the double sum, as on the CPU: float32 results agree with the CPU's to a
// few ulp, so the parity tolerance of 1e-5 relative holds on a GPU too.
#include "cuda/kernel_common.h"
#include "cuda/row_reduce.h"
#include "cuda/softmax.h"

namespace aft::cuda {
namespace {

// Forward of one row of n contiguous elements, by a team (cuda/row_reduce.h):
//   (m, s) = online max and sum of exp(x - m) over the row
//   softmax:     y_j = exp(x_j - m) · (1 / s)
//   log_softmax: y_j = x_j - (m + log s)
template <class T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  AFT_SHARED(MaxSum<T>, scratch, 32);
  const int64_t row = team_row();
  if (row >= rows) return;  // a whole team: a warp, or the block when the team is the block
  const T* xr = x + row * n;
  T* yr = y + row * n;
  MaxSum<T> p = maxsum_init<T>();
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) p = maxsum_push(p, xr[j]);
  p = maxsum_finish(team_reduce(p, MaxSumOp<T>{}, scratch));
  if (log) {
    const T lse = p.m + static_cast<T>(std::log(p.s));
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = xr[j] - lse;
  } else {
    const T inv = static_cast<T>(1.0 / p.s);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = std::exp(xr[j] - p.m) * inv;
  }
}

// The same formulas for lanes (o, i) of an inner dim, x[o, k, i] = x[(o·N + k)·I + i], in the
// CPU's three passes (m = max, then s = sum exp(x - m) in double, then y): one thread walks the
// whole lane, and the separate max pass keeps its NaN / inf behaviour exactly the CPU's.
template <class T>
__global__ void softmax_lanes_kernel(const T* x, T* y, int64_t O, int64_t N, int64_t I, bool log) {
  AFT_KERNEL_LOOP(lane, O * I) {
    const int64_t base = (lane / I) * N * I + lane % I;
    const T* xp = x + base;
    T* yp = y + base;
    T m = static_cast<T>(-INFINITY);
    for (int64_t k = 0; k < N; ++k) m = m < xp[k * I] ? xp[k * I] : m;
    double s = 0;
    for (int64_t k = 0; k < N; ++k) s += static_cast<double>(std::exp(xp[k * I] - m));
    if (log) {
      const T lse = m + static_cast<T>(std::log(s));
      for (int64_t k = 0; k < N; ++k) yp[k * I] = xp[k * I] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t k = 0; k < N; ++k) yp[k * I] = std::exp(xp[k * I] - m) * inv;
    }
  }
}

// Backward of one row, with the saved output y and upstream gradient g:
//   softmax:     s = sum_j g_j · y_j,  dx_j = y_j · (g_j - s)
//   log_softmax: s = sum_j g_j,        dx_j = g_j - exp(y_j) · s
template <class T>
__global__ void softmax_backward_rows_kernel(const T* y, const T* g, T* dx, int64_t rows, int64_t n,
                                             bool log) {
  AFT_SHARED(double, scratch, 32);
  const int64_t row = team_row();
  if (row >= rows) return;
  const T *yr = y + row * n, *gr = g + row * n;
  T* dr = dx + row * n;
  double sum = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += log ? gr[j] : gr[j] * yr[j];
  const T s = static_cast<T>(team_reduce(sum, SumOp<double>{}, scratch));
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
    dr[j] = log ? gr[j] - std::exp(yr[j]) * s : yr[j] * (gr[j] - s);
}

// The same for lanes of an inner dim.
template <class T>
__global__ void softmax_backward_lanes_kernel(const T* y, const T* g, T* dx, int64_t O, int64_t N, int64_t I,
                                              bool log) {
  AFT_KERNEL_LOOP(lane, O * I) {
    const int64_t base = (lane / I) * N * I + lane % I;
    const T *yp = y + base, *gp = g + base;
    T* dp = dx + base;
    double sum = 0;
    for (int64_t k = 0; k < N; ++k) sum += log ? gp[k * I] : gp[k * I] * yp[k * I];
    const T s = static_cast<T>(sum);
    for (int64_t k = 0; k < N; ++k)
      dp[k * I] = log ? gp[k * I] - std::exp(yp[k * I]) * s : yp[k * I] * (gp[k * I] - s);
  }
}

struct Lanes {
  int64_t O = 1, N = 1, I = 1;
};

Lanes lanes_of(const TensorDesc& t, int dim) {
  Lanes L;
  if (t.ndim == 0) return L;  // a 0-d tensor is one lane of one element
  for (int k = 0; k < dim; ++k) L.O *= t.shape[k];
  L.N = t.shape[dim];
  for (int k = dim + 1; k < t.ndim; ++k) L.I *= t.shape[k];
  return L;
}

}  // namespace

// x, y contiguous, same shape; dim already wrapped.
void softmax_forward(const TensorDesc& x, const TensorDesc& y, int dim, bool log) {
  const Lanes L = lanes_of(x, dim);
  if (L.O * L.N * L.I == 0) return;
  with_float_type(x.dtype, [&](auto z) {
    using T = decltype(z);
    if (L.I == 1) {
      const RowGrid rg = row_grid(L.O, L.N);
      AFT_LAUNCH(softmax_rows_kernel<T>, rg.grid, rg.block, 0, x.ptr<const T>(), y.ptr<T>(), L.O, L.N, log);
    } else {
      AFT_LAUNCH(softmax_lanes_kernel<T>, loop_blocks(L.O * L.I), kLoopThreads, 0, x.ptr<const T>(),
                 y.ptr<T>(), L.O, L.N, L.I, log);
    }
  });
}

// y, g, dx contiguous, same shape.
void softmax_backward(const TensorDesc& y, const TensorDesc& g, const TensorDesc& dx, int dim, bool log) {
  const Lanes L = lanes_of(y, dim);
  if (L.O * L.N * L.I == 0) return;
  with_float_type(y.dtype, [&](auto z) {
    using T = decltype(z);
    if (L.I == 1) {
      const RowGrid rg = row_grid(L.O, L.N);
      AFT_LAUNCH(softmax_backward_rows_kernel<T>, rg.grid, rg.block, 0, y.ptr<const T>(), g.ptr<const T>(),
                 dx.ptr<T>(), L.O, L.N, log);
    } else {
      AFT_LAUNCH(softmax_backward_lanes_kernel<T>, loop_blocks(L.O * L.I), kLoopThreads, 0, y.ptr<const T>(),
                 g.ptr<const T>(), dx.ptr<T>(), L.O, L.N, L.I, log);
    }
  });
}

}  // namespace aft::cuda
