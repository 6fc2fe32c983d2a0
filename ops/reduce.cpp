// ops/reduce.cpp: reductions over any set of dims, with keepdim: sum, mean, amax, max (values
// and indices along one dim), logsumexp, var.
//
// sum, amax and max are kernels; mean, logsumexp and var are written with them and elementwise
// ops, so their gradients come from the tape:
//   d sum/dx = g broadcast back;  d amax/dx = g shared equally by the tied maxima;
//   d max/dx = g scattered to the winning index;
//   logsumexp = m + log(sum(exp(x - m))) with m = amax(x) held constant (finite m only);
//   var = sum((x - mean)^2) / (n - correction).
// CPU sums of float32 accumulate in float64. Contiguous rows are summed in fixed blocks with
// eight interleaved accumulators (vectorised); sums over dims outside a unit-stride kept dim
// (columns) add whole contiguous runs into a block of accumulators. The order of additions
// depends on the shapes only, never on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/tape.h"
#include "cuda/indexing.h"
#include "cuda/reduce.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

enum class Kind { Sum = 0, Max = 1 };

struct ReduceSpec {
  std::vector<bool> reduced;  // per dim of x
  Shape keep_shape;           // x's shape with reduced dims set to 1
  Shape out_shape;            // keep_shape, or without the reduced dims
  int64_t count = 1;          // elements reduced into each output
};

ReduceSpec make_spec(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  ReduceSpec s;
  int n = x.ndim();
  s.reduced.assign(n, dims.empty());
  std::vector<bool> seen(std::max(n, 1), false);  // a 0-d tensor takes dim 0 (or -1), once
  for (int64_t d : dims) {
    int w = wrap_dim(d, n, op);
    AFT_CHECK(!seen[w], "{}: dim {} given twice in the dims of a tensor of shape {}", op, w, x.shape());
    seen[w] = true;
    if (n > 0) s.reduced[w] = true;
  }
  for (int d = 0; d < n; ++d) {
    if (s.reduced[d]) {
      s.keep_shape.push_back(1);
      s.count *= x.shape()[d];
      if (keepdim) s.out_shape.push_back(1);
    } else {
      s.keep_shape.push_back(x.shape()[d]);
      s.out_shape.push_back(x.shape()[d]);
    }
  }
  return s;
}

// Sums of float32 and float64 accumulate in double.
template <class T>
using SumAcc = std::conditional_t<std::is_same_v<T, float>, double, T>;

// Elements per block of a contiguous row sum. A row is summed block by block, each block with
// eight interleaved accumulators (independent add chains the compiler vectorises), and the
// block sums are added in order; the grouping depends on the row length only, so the result is
// the same whichever thread computes which block.
inline constexpr int64_t kSumBlock = 1 << 14;

template <class T>
SumAcc<T> sum_block(const T* p, int64_t len) {
  using Acc = SumAcc<T>;
  Acc a[8] = {};
  int64_t r = 0;
  for (; r + 8 <= len; r += 8)
    for (int k = 0; k < 8; ++k) a[k] += static_cast<Acc>(p[r + k]);
  for (int k = 0; r < len; ++r, ++k) a[k] += static_cast<Acc>(p[r]);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// out_keep[o] = reduce of x over the reduced dims; argmax (int64, same shape) optional and only
// for a single reduced dim (index along that dim).
template <class T>
void cpu_reduce(Kind kind, const Tensor& x, const std::vector<bool>& reduced, const Tensor& out_keep,
                const Tensor* argmax) {
  using Acc = SumAcc<T>;
  const int n = x.ndim();
  Shape ks, kx, ko, rs, rx;
  for (int d = 0; d < n; ++d) {
    if (reduced[d]) {
      rs.push_back(x.shape()[d]);
      rx.push_back(x.strides()[d]);
    } else {
      ks.push_back(x.shape()[d]);
      kx.push_back(x.strides()[d]);
      ko.push_back(out_keep.strides()[d]);
    }
  }
  const int64_t nout = ks.numel(), nred = rs.numel();
  AFT_ASSERT(kind == Kind::Sum || nred > 0 || nout == 0);  // checked by reduce_kernel
  const T* xp = static_cast<const T*>(x.raw_data());
  T* op = static_cast<T*>(out_keep.raw_data());
  int64_t* ap = argmax ? static_cast<int64_t*>(argmax->raw_data()) : nullptr;
  // Reduced dims, coalesced: usually one dim with stride 1 (rows) or stride D (columns).
  LoopPlan<1> rp = make_plan<1>(rs, {rs.ndim() ? rx : Shape{}});
  const int rnd = rp.shape.ndim();
  const bool rows = rnd == 1 && rp.stride[0][0] == 1;

  // Offsets in x and in out_keep of output o (row-major over the kept dims).
  auto offsets = [&](int64_t o, int64_t* xo, int64_t* oo) {
    *xo = 0;
    *oo = 0;
    for (int d = ks.ndim() - 1; d >= 0; --d) {
      int64_t i = o % ks[d];
      o /= ks[d];
      *xo += i * kx[d];
      *oo += i * ko[d];
    }
  };
  // Visits the reduced elements of one output in x's index order: f(offset from its base, r).
  auto walk = [&](auto&& f) {
    std::array<int64_t, kMaxDims> idx{};
    for (int64_t r = 0; r < nred; ++r) {
      int64_t off = 0;
      for (int d = 0; d < rnd; ++d) off += idx[d] * rp.stride[0][d];
      f(off, r);
      for (int d = rnd - 1; d >= 0 && ++idx[d] == rp.shape[d]; --d) idx[d] = 0;
    }
  };

  if (kind == Kind::Sum && rows) {
    // Contiguous rows: out[o] = sum of its blocks in order. Few long rows are split by block
    // over the threads (partial sums first, then each row adds its partials in order).
    const int64_t len = rp.shape[0], nblk = std::max<int64_t>(1, (len + kSumBlock - 1) / kSumBlock);
    if (nblk > 1 && nout < 64) {
      std::vector<Acc> part(static_cast<size_t>(nout * nblk));
      parallel_for(0, nout * nblk, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          int64_t xo, oo, j = t % nblk;
          offsets(t / nblk, &xo, &oo);
          part[t] = sum_block(xp + xo + j * kSumBlock, std::min(kSumBlock, len - j * kSumBlock));
        }
      });
      for (int64_t o = 0; o < nout; ++o) {
        int64_t xo, oo;
        offsets(o, &xo, &oo);
        Acc acc = 0;
        for (int64_t j = 0; j < nblk; ++j) acc += part[o * nblk + j];
        op[oo] = static_cast<T>(acc);
      }
      return;
    }
    parallel_for(0, nout, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(len, 1)),
                 [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        int64_t xo, oo;
        offsets(o, &xo, &oo);
        Acc acc = 0;
        for (int64_t j = 0; j * kSumBlock < len; ++j)
          acc += sum_block(xp + xo + j * kSumBlock, std::min(kSumBlock, len - j * kSumBlock));
        op[oo] = static_cast<T>(acc);
      }
    });
    return;
  }

  if (kind == Kind::Sum && ks.ndim() > 0 && kx[ks.ndim() - 1] == 1 && ks[ks.ndim() - 1] > 1) {
    // Reduced dims outside a unit-stride kept dim (columns of a matrix, the batch dims of a
    // bias gradient): a block of up to kCols adjacent outputs walks the reduced elements once,
    // adding contiguous runs into kCols accumulators. Each output still adds its elements one
    // by one in x's index order.
    constexpr int64_t kCols = 256;
    const int64_t inner = ks[ks.ndim() - 1], ncb = (inner + kCols - 1) / kCols, ostride = ko[ks.ndim() - 1];
    const int64_t nblocks = nout / inner * ncb;
    parallel_for(0, nblocks, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(kCols * nred, 1)),
                 [&](int64_t b, int64_t e) {
      std::array<Acc, kCols> acc;
      for (int64_t t = b; t < e; ++t) {
        int64_t j0 = (t % ncb) * kCols, cols = std::min(kCols, inner - j0), xo, oo;
        offsets(t / ncb * inner + j0, &xo, &oo);
        const T* base = xp + xo;
        std::fill(acc.begin(), acc.begin() + cols, Acc(0));
        walk([&](int64_t off, int64_t) {
          const T* p = base + off;
          for (int64_t c = 0; c < cols; ++c) acc[c] += static_cast<Acc>(p[c]);
        });
        for (int64_t c = 0; c < cols; ++c) op[oo + c * ostride] = static_cast<T>(acc[c]);
      }
    });
    return;
  }

  auto reduce_one = [&](int64_t o) {
    int64_t xo, oo;
    offsets(o, &xo, &oo);
    const T* base = xp + xo;
    if (kind == Kind::Sum) {
      Acc acc = 0;
      walk([&](int64_t off, int64_t) { acc += base[off]; });
      op[oo] = static_cast<T>(acc);
    } else {
      // Walk the reduced elements in x's index order; the first maximum (or first NaN) wins.
      T best = base[0];
      int64_t best_r = 0;
      walk([&](int64_t off, int64_t r) {
        T v = base[off];
        if (best == best && (v > best || v != v)) {
          best = v;
          best_r = r;
        }
      });
      op[oo] = best;
      if (ap) ap[oo] = best_r;
    }
  };
  int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(nred, 1));
  parallel_for(0, nout, grain, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) reduce_one(o);
  });
}

// Reduces into a new keepdim-shaped tensor.
Tensor reduce_kernel(Kind kind, const char* op, const Tensor& x, const ReduceSpec& s, Tensor* argmax) {
  AFT_CHECK(kind == Kind::Sum || s.count > 0 || s.keep_shape.numel() == 0,
            "{}: cannot take the maximum over an empty dimension of shape {}", op, x.shape());
  Tensor out = empty(s.keep_shape, {x.dtype(), x.device()});
  if (argmax) *argmax = empty(s.keep_shape, {kInt64, x.device()});
  if (x.is_cuda()) {
    std::vector<char> red(s.reduced.begin(), s.reduced.end());
    [[maybe_unused]] cuda::TensorDesc am = argmax ? desc(*argmax) : cuda::TensorDesc();
    AFT_CUDA_CALL(cuda::reduce(static_cast<int>(kind), desc(x), reinterpret_cast<const bool*>(red.data()),
                               desc(out), argmax ? &am : nullptr));
    return out;
  }
  dispatch_float(x.dtype(), op, [&]<class T>() { cpu_reduce<T>(kind, x, s.reduced, out, argmax); });
  return out;
}

// Scatters g (keepdim shape) into zeros of x's shape at index (int64, keepdim shape) along dim.
Tensor scatter_to_index(const Tensor& g, const Tensor& index, const Shape& x_shape, int dim) {
  Tensor dx = zeros(x_shape, {g.dtype(), g.device()});
  Tensor gi = g.contiguous(), ii = index.contiguous();
  if (g.is_cuda()) {  // gather's backward: index has g's shape, along dim
    AFT_CUDA_CALL(cuda::index_scatter_add(desc(gi), dim, desc(ii), /*full_index=*/true, desc(dx)));
    return dx;
  }
  dispatch_float(g.dtype(), "max", [&]<class T>() {
    const T* gp = gi.data<T>();
    const int64_t* ip = ii.data<int64_t>();
    T* dp = dx.data<T>();
    Strides ds = dx.strides();
    Shape ks = gi.shape();
    int64_t n = gi.numel();
    for (int64_t o = 0; o < n; ++o) {
      int64_t rem = o, off = 0;
      for (int d = ks.ndim() - 1; d >= 0; --d) {
        int64_t i = rem % ks[d];
        rem /= ks[d];
        off += (d == dim ? ip[o] : i) * ds[d];
      }
      dp[off] += gp[o];
    }
  });
  return dx;
}

// The result of a kernel (keepdim shape) as the requested output shape; not recorded.
Tensor as_output(const Tensor& keep, const ReduceSpec& s) {
  return as_strided(keep, s.out_shape, contiguous_strides(s.out_shape), keep.offset());
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float("sum", x);
  ReduceSpec s = make_spec("sum", x, dims, keepdim);
  Tensor out = as_output(reduce_kernel(Kind::Sum, "sum", x, s, nullptr), s);
  if (autograd::needs_grad(x)) {
    Shape keep = s.keep_shape, xs = x.shape();
    autograd::record("sum", {x}, {out}, [keep, xs](const autograd::TensorList& g) {
      return autograd::TensorList{g[0].reshape(keep).expand(xs)};
    });
  }
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float("mean", x);
  ReduceSpec s = make_spec("mean", x, dims, keepdim);
  return div(sum(x, dims, keepdim), static_cast<double>(s.count));
}

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float("amax", x);
  ReduceSpec s = make_spec("amax", x, dims, keepdim);
  Tensor keep = reduce_kernel(Kind::Max, "amax", x, s, nullptr);
  Tensor out = as_output(keep, s);
  if (autograd::needs_grad(x)) {
    // The gradient is shared equally by every element equal to the maximum.
    autograd::SavedTensor sx(x), sm(keep);
    Shape ks = s.keep_shape;
    std::vector<int64_t> rdims;
    for (int d = 0; d < x.ndim(); ++d)
      if (s.reduced[d]) rdims.push_back(d);
    autograd::record("amax", {x}, {out}, [sx, sm, ks, rdims](const autograd::TensorList& g) {
      const Tensor& xv = sx.get();
      Tensor mask = eq(xv, sm.get()).to(xv.dtype());
      Tensor count = sum(mask, rdims, true);
      return autograd::TensorList{mul(mask, div(g[0].reshape(ks), count))};
    });
  }
  return out;
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  check_float("max", x);
  int d = wrap_dim(dim, x.ndim(), "max");  // a 0-d x takes dim 0 or -1 and is its own maximum
  ReduceSpec s = make_spec("max", x, {d}, keepdim);
  Tensor idx_keep;
  Tensor keep = reduce_kernel(Kind::Max, "max", x, s, &idx_keep);
  MaxResult r{as_output(keep, s), as_output(idx_keep, s)};
  if (autograd::needs_grad(x)) {
    Shape ks = s.keep_shape, xs = x.shape();
    // Saved (not merely captured): an in-place change of r.indices is then reported.
    autograd::SavedTensor idx(idx_keep);
    autograd::record("max", {x}, {r.values}, [ks, xs, idx, d](const autograd::TensorList& g) {
      return autograd::TensorList{scatter_to_index(g[0].reshape(ks), idx.get(), xs, d)};
    });
  }
  return r;
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float("logsumexp", x);
  ReduceSpec s = make_spec("logsumexp", x, dims, keepdim);
  Tensor m;
  {
    // The shift m = max(x) cancels in the value and the gradient, so it is a constant here.
    // Rows whose maximum is infinite (all -inf, or +inf present) use m = 0 instead, and so do
    // empty reductions (no maximum exists; the result is log(0) = -inf).
    autograd::NoGradGuard ng;
    if (s.count == 0) {
      m = zeros(s.keep_shape, {x.dtype(), x.device()});
    } else {
      Tensor mk = amax(x.detach(), dims, true);
      m = where(eq(abs(mk), std::numeric_limits<double>::infinity()), zeros_like(mk), mk);
    }
  }
  Tensor lse = add(log(sum(exp(sub(x, m)), dims, true)), m);
  return keepdim ? lse : lse.reshape(s.out_shape);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, int64_t correction) {
  check_float("var", x);
  ReduceSpec s = make_spec("var", x, dims, keepdim);
  Tensor d = sub(x, mean(x, dims, true));
  double denom = static_cast<double>(std::max<int64_t>(s.count - correction, 0));
  return div(sum(mul(d, d), dims, keepdim), denom);
}

}  // namespace aft
