// cuda/cross_entropy.cu: fused softmax cross-entropy (log-softmax + NLL) of logits [N, C]
// against int64 targets [N], with ignore_index, label smoothing and the three reductions,
// forward and backward, with the formulas of ops/cross_entropy.cpp.
//
// Thread mapping:
//   forward rows: a row kernel (cuda/row_reduce.h), one warp per row for C <= 1024, a block
//     per row above (a vocabulary). One read of the row gives the online (max, sum of exp) and
//     the sum of the logits (for smoothing) in one reduction tree; the team's thread 0 writes
//     lse[r] and loss[r]. A target outside [0, C) that is not ignore_index is never read: the
//     row records its number in *err (atomicMin: the first bad row wins, whatever the order)
//     and the op reports it on the host.
//   reduction (Mean, Sum): one block of 256 threads; thread t adds rows t, t + 256, ... in
//     float64, then a fixed tree: deterministic. It also counts the rows not ignored (the
//     divisor of Mean, kept on the device for the backward: no copy to the host).
//   backward: one thread per logit (grid-stride over N·C), no reduction.
// exp is full precision in T, sums and the loss are in double, as on the CPU (no fast math).
#include "cuda/cross_entropy.h"
#include "cuda/kernel_common.h"
#include "cuda/row_reduce.h"

namespace aft::cuda {
namespace {

enum Mode : int { kMean = 0, kSum = 1, kNone = 2 };  // ops.h's Reduction order

// (max, sum of exp) of the row and the plain sum of its logits, merged in one tree.
template <class T>
struct RowStat {
  MaxSum<T> ms;
  double sx;
};

template <class T>
struct RowStatOp {
  __device__ RowStat<T> operator()(RowStat<T> a, RowStat<T> b) const {
    return {MaxSumOp<T>{}(a.ms, b.ms), a.sx + b.sx};
  }
};

// Per row r with target t, e = label_smoothing:
//   lse = m + log(sum_c exp(x_c - m))
//   loss_r = (1 - e)·(lse - x_t) + e·(lse - sum_c x_c / C)      (0 and lse 0 when t is ignored)
// loss_r goes to loss (T, reduction None) or to loss_acc (double, summed next), one of them.
template <class T>
__global__ void cross_entropy_rows_kernel(const T* x, const int64_t* target, T* lse, T* loss, double* loss_acc,
                                          int64_t N, int64_t C, int64_t ignore_index, double e, long long* err) {
  AFT_SHARED(RowStat<T>, scratch, 32);
  const int64_t row = team_row();
  if (row >= N) return;
  const int64_t t = target[row];
  if (t == ignore_index || t < 0 || t >= C) {  // the whole team leaves together
    if (threadIdx.x == 0) {
      if (t != ignore_index) atomicMin(err, static_cast<long long>(row));
      lse[row] = 0;
      if (loss) loss[row] = 0;
      else loss_acc[row] = 0;
    }
    return;
  }
  const T* xr = x + row * C;
  RowStat<T> p{maxsum_init<T>(), 0.0};
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T v = xr[c];
    p.ms = maxsum_push(p.ms, v);
    p.sx += v;
  }
  p = team_reduce(p, RowStatOp<T>{}, scratch);
  if (threadIdx.x == 0) {
    const MaxSum<T> ms = maxsum_finish(p.ms);
    const double l = static_cast<double>(ms.m) + std::log(ms.s);
    double v = (1 - e) * (l - static_cast<double>(xr[t]));
    if (e > 0) v += e * (l - p.sx / static_cast<double>(C));
    lse[row] = static_cast<T>(l);
    if (loss) loss[row] = static_cast<T>(v);
    else loss_acc[row] = v;
  }
}

// total = sum_r loss_r (float64, fixed order), count = #{r : t_r != ignore_index}
//   Sum: out = total;  Mean: out = total / count (0/0 = NaN when every row is ignored)
template <class T>
__global__ void cross_entropy_reduce_kernel(const double* loss, const int64_t* target, T* out, int64_t* count,
                                            int64_t N, int64_t ignore_index, int mode) {
  AFT_SHARED(Sum2<double>, scratch, 32);
  Sum2<double> s{0.0, 0.0};
  for (int64_t r = threadIdx.x; r < N; r += blockDim.x) {
    s.a += loss[r];
    s.b += target[r] != ignore_index ? 1.0 : 0.0;
  }
  s = team_reduce(s, Sum2Op<double>{}, scratch);
  if (threadIdx.x == 0) {
    out[0] = static_cast<T>(mode == kMean ? s.a / s.b : s.a);
    count[0] = static_cast<int64_t>(s.b);
  }
}

// dx_rc = (exp(x_rc - lse_r) - smooth) · g_r - [c = t_r]·keep·g_r   (0 for an ignored row)
//   smooth = e / C, keep = 1 - e (both rounded from float64, as on the CPU),
//   g_r = g[r] (None), g[0] (Sum), g[0] / count (Mean; 0 when count = 0)
template <class T>
__global__ void cross_entropy_backward_kernel(const T* x, const int64_t* target, const T* lse, const T* g,
                                              const int64_t* count, T* dx, int64_t N, int64_t C,
                                              int64_t ignore_index, T smooth, T keep, int mode) {
  AFT_KERNEL_LOOP(i, N * C) {
    const int64_t r = i / C, c = i % C, t = target[r];
    if (t == ignore_index) {
      dx[i] = T(0);
      continue;
    }
    const T gr = mode == kNone  ? g[r]
                 : mode == kSum ? g[0]
                 : count[0] > 0 ? g[0] / static_cast<T>(count[0])
                                : T(0);
    T v = (std::exp(x[i] - lse[r]) - smooth) * gr;
    if (c == t) v -= keep * gr;
    dx[i] = v;
  }
}

}  // namespace

// x [N, C] contiguous; target [N] contiguous int64; lse [N]; out [N] (None) or []; loss_acc
// float64 [N] and count int64 [1] (Mean, Sum); err int64 [1] holding N, lowered to the first
// row whose target is out of range.
void cross_entropy_forward(const TensorDesc& x, const TensorDesc& target, const TensorDesc& lse,
                           const TensorDesc& out, const TensorDesc& loss_acc, const TensorDesc& count,
                           const TensorDesc& err, int64_t ignore_index, double label_smoothing, int mode) {
  const int64_t N = x.shape[0], C = x.shape[1];
  with_float_type(x.dtype, [&](auto z) {
    using T = decltype(z);
    const RowGrid rg = row_grid(N, C);
    T* loss = mode == kNone ? out.ptr<T>() : nullptr;
    double* acc = mode == kNone ? nullptr : loss_acc.ptr<double>();
    AFT_LAUNCH(cross_entropy_rows_kernel<T>, rg.grid, rg.block, 0, x.ptr<const T>(), target.ptr<const int64_t>(),
               lse.ptr<T>(), loss, acc, N, C, ignore_index, label_smoothing,
               reinterpret_cast<long long*>(err.data));
    if (mode != kNone)
      AFT_LAUNCH(cross_entropy_reduce_kernel<T>, 1, 256, 0, acc, target.ptr<const int64_t>(), out.ptr<T>(),
                 count.ptr<int64_t>(), N, ignore_index, mode);
  });
}

// dx [N, C]; g [N] (None) or []; count as the forward left it (Mean).
void cross_entropy_backward(const TensorDesc& x, const TensorDesc& target, const TensorDesc& lse,
                            const TensorDesc& g, const TensorDesc& count, const TensorDesc& dx,
                            int64_t ignore_index, double label_smoothing, int mode) {
  const int64_t N = x.shape[0], C = x.shape[1];
  with_float_type(x.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(cross_entropy_backward_kernel<T>, loop_blocks(N * C), kLoopThreads, 0, x.ptr<const T>(),
               target.ptr<const int64_t>(), lse.ptr<const T>(), g.ptr<const T>(), count.ptr<const int64_t>(),
               dx.ptr<T>(), N, C, ignore_index, static_cast<T>(label_smoothing / static_cast<double>(C)),
               static_cast<T>(1 - label_smoothing), mode);
  });
}

}  // namespace aft::cuda
