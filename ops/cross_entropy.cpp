// ops/cross_entropy.cpp: softmax cross-entropy of logits [N, C] against class targets [N],
// log-softmax and negative log-likelihood fused into one pass per row, with ignore_index and
// label smoothing.
//
// Per row r with target t (e = label_smoothing; the target distribution is
// q_c = (1 - e)·[c = t] + e/C):
//   m = max_c x_c,  lse = m + log(sum_c exp(x_c - m))                 (max-shifted)
//   loss_r = -sum_c q_c · log_softmax_c = (1 - e)·(lse - x_t) + e·(lse - sum_c x_c / C)
// Rows with t = ignore_index have loss 0 and no gradient.
// Reduction: None -> [N]; Sum -> sum of the rows; Mean -> sum / (number of rows not ignored).
// Mean with every row ignored (or N = 0) is 0/0 = NaN, as in PyTorch; its gradient is 0.
// The rows are summed in row order after the parallel pass, so the loss does not depend on the
// thread count; float32 sums accumulate in float64.
//
// Backward: dx_rc = (softmax_rc - q_c) · g_r, with g_r = g / count (Mean), g (Sum), g[r] (None),
// and softmax_rc = exp(x_rc - lse_r). Saved: the logits and lse per row (N numbers, not the
// [N, C] softmax), and the targets.
//
// CUDA tensors run cuda/cross_entropy.cu (same formulas, a warp or block per row). There the
// targets are checked by the kernel, which never reads a bad one and leaves the first bad row
// in a device flag; the op reads that one number back (a synchronisation, 8 bytes) and raises
// the same error as on the CPU. The count of rows not ignored stays on the device.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/tape.h"
#include "core/math/elementwise.h"
#include "cuda/cross_entropy.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

template <class T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;

// loss[r] and lse[r] for every row (0 for ignored rows).
template <class T>
void forward_kernel(const T* x, const int64_t* target, T* lse, Acc<T>* loss, int64_t N, int64_t C,
                    int64_t ignore_index, double e) {
  parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)),
               [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = target[r];
      if (t == ignore_index) {
        lse[r] = 0;
        loss[r] = 0;
        continue;
      }
      const T* xr = x + r * C;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t c = 0; c < C; ++c) m = std::max(m, xr[c]);
      Acc<T> s = 0, sx = 0;
      for (int64_t c = 0; c < C; ++c) {
        s += emath::exp_(xr[c] - m);
        sx += xr[c];
      }
      const Acc<T> l = m + std::log(s);
      Acc<T> v = (1 - e) * (l - xr[t]);
      if (e > 0) v += e * (l - sx / static_cast<Acc<T>>(C));
      lse[r] = static_cast<T>(l);
      loss[r] = v;
    }
  });
}

// dx[r, c] = (exp(x[r, c] - lse[r]) - q_c) · gr[r]; gr[r] = g_scalar when g_rows is null.
template <class T>
void backward_kernel(const T* x, const int64_t* target, const T* lse, const T* g_rows, T g_scalar, T* dx,
                     int64_t N, int64_t C, int64_t ignore_index, double e) {
  parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)),
               [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* dr = dx + r * C;
      const int64_t t = target[r];
      if (t == ignore_index) {
        std::fill(dr, dr + C, T(0));
        continue;
      }
      const T* xr = x + r * C;
      const T gr = g_rows ? g_rows[r] : g_scalar, l = lse[r];
      const T smooth = static_cast<T>(e / static_cast<double>(C));
      for (int64_t c = 0; c < C; ++c) dr[c] = (emath::exp_(xr[c] - l) - smooth) * gr;
      dr[t] -= static_cast<T>(1 - e) * gr;
    }
  });
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double label_smoothing,
                     Reduction reduction) {
  check_float("cross_entropy", logits);
  check_defined("cross_entropy", target, "target");
  AFT_CHECK(logits.ndim() == 2, "cross_entropy: logits must be 2-d [N, C], got shape {}", logits.shape());
  AFT_CHECK(target.dtype() == kInt64, "cross_entropy: target must be int64, got {} of shape {}", target.dtype(),
            target.shape());
  AFT_CHECK(target.ndim() == 1 && target.shape()[0] == logits.shape()[0],
            "cross_entropy: target must have shape [{}] for logits {}, got {}", logits.shape()[0], logits.shape(),
            target.shape());
  check_same_device("cross_entropy", logits, target);
  AFT_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
            "cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing);
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  Tensor tc = target.contiguous();
  Tensor xc = logits.contiguous();
  Tensor lse = empty({N}, {logits.dtype(), logits.device()});
  Tensor out = reduction == Reduction::None ? empty({N}, {logits.dtype(), logits.device()})
                                            : empty(Shape{}, {logits.dtype(), logits.device()});
  const double e = label_smoothing;
  const auto bad_target = [&](int64_t t, int64_t r) {
    AFT_ERROR("cross_entropy: target {} of row {} is out of range [0, {}) (C = {})", t, r, C, C);
  };
  int64_t count = 0;      // CPU: rows not ignored
  Tensor count_dev;       // CUDA: the same number, on the device
  if (logits.is_cuda()) {
    // per-row losses in float64 before the sum, as on the CPU (unused with Reduction::None)
    Tensor loss_acc = empty({N}, {kFloat64, logits.device()});
    count_dev = zeros({1}, {kInt64, logits.device()});
    Tensor err = full({1}, static_cast<double>(N), {kInt64, logits.device()});
    AFT_CUDA_CALL(cuda::cross_entropy_forward(desc(xc), desc(tc), desc(lse), desc(out), desc(loss_acc), desc(count_dev),
                                              desc(err), ignore_index, e, static_cast<int>(reduction)));
    const int64_t bad_row = err.cpu().data<int64_t>()[0];
    if (bad_row < N) bad_target(tc.narrow(0, bad_row, 1).cpu().data<int64_t>()[0], bad_row);
  } else {
    const int64_t* tp = tc.data<int64_t>();
    for (int64_t r = 0; r < N; ++r) {
      if (tp[r] == ignore_index) continue;
      if (tp[r] < 0 || tp[r] >= C) bad_target(tp[r], r);
      ++count;
    }
    dispatch_float(logits.dtype(), "cross_entropy", [&]<class T>() {
      std::vector<Acc<T>> loss(static_cast<size_t>(N));
      forward_kernel<T>(xc.data<T>(), tp, lse.data<T>(), loss.data(), N, C, ignore_index, e);
      T* op = out.data<T>();
      if (reduction == Reduction::None) {
        for (int64_t r = 0; r < N; ++r) op[r] = static_cast<T>(loss[static_cast<size_t>(r)]);
      } else {
        Acc<T> total = 0;
        for (Acc<T> v : loss) total += v;
        if (reduction == Reduction::Mean)
          total = count > 0 ? total / static_cast<Acc<T>>(count) : std::numeric_limits<Acc<T>>::quiet_NaN();
        op[0] = static_cast<T>(total);
      }
    });
  }
  if (!autograd::needs_grad(logits)) return out;
  SavedTensor sx(xc), st(tc);
  Tensor saved_lse = lse;  // made here, never tracked
  autograd::record("cross_entropy", {logits}, {out}, [=](const TensorList& g) {
    const Tensor& x = sx.get();
    Tensor dx = empty(x.shape(), {x.dtype(), x.device()});
    Tensor gc = g[0].contiguous();
    if (x.is_cuda()) {
      AFT_CUDA_CALL(cuda::cross_entropy_backward(desc(x), desc(st.get()), desc(saved_lse), desc(gc),
                                                 desc(count_dev), desc(dx),
                                                 ignore_index, e, static_cast<int>(reduction)));
      return TensorList{dx};
    }
    dispatch_float(x.dtype(), "cross_entropy", [&]<class T>() {
      const T* g_rows = reduction == Reduction::None ? gc.data<T>() : nullptr;
      T g_scalar = 0;
      if (reduction == Reduction::Sum) g_scalar = gc.data<T>()[0];
      if (reduction == Reduction::Mean && count > 0) g_scalar = gc.data<T>()[0] / static_cast<T>(count);
      backward_kernel<T>(x.data<T>(), st.get().data<int64_t>(), saved_lse.data<T>(), g_rows, g_scalar,
                         dx.data<T>(), N, C, ignore_index, e);
    });
    return TensorList{dx};
  });
  return out;
}

}  // namespace aft
