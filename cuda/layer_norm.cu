// cuda/layer_norm.cu: fused layer normalisation over the last dim, forward and backward, with
// the formulas of ops/layer_norm.cpp. x, g, y, dx are contiguous R rows of D; weight w and
// bias b are [D] and may be absent (data == nullptr: weight 1, bias 0).
//
// Thread mapping:
//   forward and dx: a row kernel (cuda/row_reduce.h): one warp per row for D <= 1024, one
//     block per row above. Each thread keeps Welford statistics of its elements (x read once),
//     the team merges them (Chan's rule) in a fixed tree; a second read of the row writes y.
//     So mean and variance are one pass and need no E[x²] - E[x]² cancellation.
//   dw, db: column sums over the R rows, without atomics and deterministic. Kernel 1 has a
//     block per (32 columns, part of the rows): 32 x 8 threads, thread (c, r) sums column c over
//     rows r, r + 8, ... of its part (a warp reads 32 neighbouring columns of a row: coalesced),
//     the 8 sums of a column are added in order through shared memory and written to a
//     [parts, D] buffer. Kernel 2 has a thread per column adding its `parts` partial sums in
//     order. `parts` depends only on R, so the bits depend only on the shapes.
// Mean and variance are Welford statistics in T (cuda/row_reduce.h says why); the gradient
// sums accumulate in double (the [parts, D] buffer is float64 for both dtypes), as the CPU
// sums float32 in float64. sqrt is the full-precision one (1 / sqrt, not rsqrt).
#include "cuda/kernel_common.h"
#include "cuda/layer_norm.h"
#include "cuda/row_reduce.h"

namespace aft::cuda {
namespace {

// Per row:  mean = sum_j x_j / D,  var = sum_j (x_j - mean)² / D  (Welford),
//           rstd = 1 / sqrt(var + eps),  y_j = (x_j - mean) · rstd · w_j + b_j
// Saved: mean[row], rstd[row].
template <class T>
__global__ void layer_norm_forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t R,
                                          int64_t D, T eps) {
  AFT_SHARED(Welford<T>, scratch, 32);
  const int64_t row = team_row();
  if (row >= R) return;
  const T* xr = x + row * D;
  T* yr = y + row * D;
  Welford<T> st{T(0), T(0), T(0)};
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) st = welford_push(st, xr[j]);
  st = team_reduce(st, WelfordOp<T>{}, scratch);
  const T mu = st.mean, rs = T(1) / std::sqrt(st.m2 / static_cast<T>(D) + eps);
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
    yr[j] = (xr[j] - mu) * rs * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

// Per row, with gw_j = g_j · w_j and xhat_j = (x_j - mean) · rstd:
//   dx_j = rstd · (gw_j - mean_k(gw_k) - xhat_j · mean_k(gw_k · xhat_k))
template <class T>
__global__ void layer_norm_dx_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* g, T* dx,
                                     int64_t R, int64_t D) {
  AFT_SHARED(Sum2<double>, scratch, 32);
  const int64_t row = team_row();
  if (row >= R) return;
  const T *xr = x + row * D, *gr = g + row * D;
  T* dr = dx + row * D;
  const T mu = mean[row], rs = rstd[row];
  Sum2<double> s{0.0, 0.0};
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    const T gw = gr[j] * (w ? w[j] : T(1));
    s.a += gw;
    s.b += gw * ((xr[j] - mu) * rs);
  }
  s = team_reduce(s, Sum2Op<double>{}, scratch);
  const T ma = static_cast<T>(s.a / static_cast<double>(D)), mb = static_cast<T>(s.b / static_cast<double>(D));
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    const T gw = gr[j] * (w ? w[j] : T(1));
    dr[j] = rs * (gw - ma - (xr[j] - mu) * rs * mb);
  }
}

constexpr int kColTile = 32, kRowLanes = 8;

// Partial column sums over rows [part·rows_per_part, (part + 1)·rows_per_part):
//   pw[part, j] = sum_r g_rj · xhat_rj   (when pw is given),   pb[part, j] = sum_r g_rj
// blockIdx = (column tile, part); threadIdx = (column in the tile, row lane).
template <class T>
__global__ void layer_norm_dwdb_partial_kernel(const T* x, const T* mean, const T* rstd, const T* g, double* pw,
                                               double* pb, int64_t R, int64_t D, int64_t rows_per_part) {
  AFT_SHARED(double, sw, kColTile * kRowLanes);
  AFT_SHARED(double, sb, kColTile * kRowLanes);
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_part;
  const int64_t r1 = r0 + rows_per_part < R ? r0 + rows_per_part : R;
  double aw = 0, ab = 0;
  if (j < D) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const T gv = g[r * D + j];
      ab += gv;
      if (pw) aw += gv * ((x[r * D + j] - mean[r]) * rstd[r]);
    }
  }
  const int t = threadIdx.y * kColTile + threadIdx.x;
  sw[t] = aw;
  sb[t] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && j < D) {
    double tw = sw[threadIdx.x], tb = sb[threadIdx.x];
    for (int k = 1; k < kRowLanes; ++k) {
      tw += sw[k * kColTile + threadIdx.x];
      tb += sb[k * kColTile + threadIdx.x];
    }
    const int64_t o = static_cast<int64_t>(blockIdx.y) * D + j;
    if (pw) pw[o] = tw;
    pb[o] = tb;
  }
}

// dw_j = sum_p pw[p, j],  db_j = sum_p pb[p, j]   (p in order; either output may be absent)
template <class T>
__global__ void layer_norm_dwdb_final_kernel(const double* pw, const double* pb, T* dw, T* db, int64_t parts,
                                             int64_t D) {
  AFT_KERNEL_LOOP(j, D) {
    double tw = 0, tb = 0;
    for (int64_t p = 0; p < parts; ++p) {
      if (dw) tw += pw[p * D + j];
      tb += pb[p * D + j];
    }
    if (dw) dw[j] = static_cast<T>(tw);
    if (db) db[j] = static_cast<T>(tb);
  }
}

struct Rows {
  int64_t R = 0, D = 0;
};

Rows rows_of(const TensorDesc& t) {
  Rows s;
  s.D = t.shape[t.ndim - 1];
  s.R = s.D == 0 ? 0 : t.numel() / s.D;
  return s;
}

int64_t rows_per_part(int64_t R) {
  int64_t parts = (R + 31) / 32;
  parts = parts < 1 ? 1 : parts > 128 ? 128 : parts;
  const int64_t rpp = (R + parts - 1) / parts;
  return rpp < 1 ? 1 : rpp;
}

}  // namespace

// Rows of the float64 [2, parts, D] work buffer layer_norm_backward needs for dw/db of R rows.
int64_t layer_norm_grad_parts(int64_t R) {
  const int64_t rpp = rows_per_part(R);
  const int64_t parts = (R + rpp - 1) / rpp;
  return parts < 1 ? 1 : parts;
}

// x, y contiguous [..., D]; w, b [D] or data == nullptr; mean, rstd [R].
void layer_norm_forward(const TensorDesc& x, const TensorDesc& w, const TensorDesc& b, const TensorDesc& y,
                        const TensorDesc& mean, const TensorDesc& rstd, double eps) {
  const Rows s = rows_of(x);
  if (s.R == 0) return;
  with_float_type(x.dtype, [&](auto z) {
    using T = decltype(z);
    const RowGrid rg = row_grid(s.R, s.D);
    AFT_LAUNCH(layer_norm_forward_kernel<T>, rg.grid, rg.block, 0, x.ptr<const T>(), w.ptr<const T>(),
               b.ptr<const T>(), y.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), s.R, s.D, static_cast<T>(eps));
  });
}

// Any of dx, dw, db may be absent (data == nullptr). x, mean, rstd are needed for dx and dw,
// w (optional) for dx; work is float64 [2, layer_norm_grad_parts(R), D] when dw or db is wanted.
void layer_norm_backward(const TensorDesc& x, const TensorDesc& w, const TensorDesc& mean, const TensorDesc& rstd,
                         const TensorDesc& g, const TensorDesc& dx, const TensorDesc& dw, const TensorDesc& db,
                         const TensorDesc& work) {
  const Rows s = rows_of(g);
  with_float_type(g.dtype, [&](auto z) {
    using T = decltype(z);
    if (dx.data && s.R > 0) {
      const RowGrid rg = row_grid(s.R, s.D);
      AFT_LAUNCH(layer_norm_dx_kernel<T>, rg.grid, rg.block, 0, x.ptr<const T>(), w.ptr<const T>(),
                 mean.ptr<const T>(), rstd.ptr<const T>(), g.ptr<const T>(), dx.ptr<T>(), s.R, s.D);
    }
    if ((dw.data || db.data) && s.D > 0) {
      const int64_t rpp = rows_per_part(s.R), parts = layer_norm_grad_parts(s.R);
      double* pw = dw.data ? work.ptr<double>() : nullptr;
      double* pb = work.ptr<double>() + parts * s.D;
      AFT_LAUNCH(layer_norm_dwdb_partial_kernel<T>, dim3(blocks_for(s.D, kColTile), static_cast<unsigned>(parts)),
                 dim3(kColTile, kRowLanes), 0, x.ptr<const T>(), mean.ptr<const T>(), rstd.ptr<const T>(),
                 g.ptr<const T>(), pw, pb, s.R, s.D, rpp);
      AFT_LAUNCH(layer_norm_dwdb_final_kernel<T>, loop_blocks(s.D), kLoopThreads, 0, pw, pb, dw.ptr<T>(),
                 db.ptr<T>(), parts, s.D);
    }
  });
}

}  // namespace aft::cuda
