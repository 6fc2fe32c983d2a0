// ops/shape_ops.cpp: ops that move elements between tensors without arithmetic: cat, stack,
// split, and the indexed reads index_select, gather, embedding.
//
// Forward works for every dtype (float32, float64, int64, bool); gradients exist for floats.
//
//   cat:   out[..., off_i + j, ...] = x_i[..., j, ...]          dx_i = g.narrow(dim, off_i, n_i)
//   stack: cat of the inputs unsqueezed at dim (its gradient comes from the tape)
//   split: views of x along dim, one node for all pieces:       dx = the pieces' gradients laid
//          side by side (zeros for a piece that got none)
//   index_select / gather / embedding, with the index space [O, K, I] (O = extents before dim,
//   K = along dim, I = after dim):
//     out[o, k, i] = x[o, idx(o, k, i), i]
//     dx[o, r, i]  = sum over k with idx(o, k, i) = r of g[o, k, i]     (a scatter-add)
//   where idx(o, k, i) = index[k] (index_select, embedding) or index[o, k, i] (gather).
//
// Determinism of the scatter-add: threads split the (o, i) positions, never k, so every dx
// element is summed by one thread, over k in increasing order: the same bits for any thread
// count. For embedding (O = 1, I = D) this parallelises over the D columns.
//
// CUDA tensors: cat copies with the strided copy kernel (cuda/elementwise.cu); split and the
// backward of cat are views; the indexed reads and their scatter-add run cuda/indexing.cu (the
// same lane-per-(o, i) scheme, so the same bits). Index values of a CUDA index are checked by
// a kernel that records the first bad position; the op reads that one number back (a
// synchronisation, 8 bytes) and raises the CPU's error.
#include <fmt/ranges.h>

#include <algorithm>
#include <string>

#include "autograd/tape.h"
#include "cuda/elementwise.h"
#include "cuda/indexing.h"
#include "ops/cpu_loops.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

// ------------------------------------------------------------------ cat / stack / split

void check_dense_dtype(const char* op, const Tensor& t) {
  AFT_CHECK(t.dtype() == kFloat32 || t.dtype() == kFloat64 || t.dtype() == kInt64 || t.dtype() == kBool,
            "{}: dtype {} is not supported", op, t.dtype());
}

// dst = src elementwise (same shape, same dtype, any strides); multithreaded.
void copy_into(const Tensor& dst, const Tensor& src, const char* op) {
  if (dst.is_cuda()) {
    AFT_CUDA_CALL(cuda::copy(desc(dst), desc(src)));
    return;
  }
  dispatch_all(dst.dtype(), op, [&]<class T>() { cpu_map<T, T>(dst, [](T v) { return v; }, src); });
}

// ------------------------------------------------------------------ indexed reads

// The index space [O, K, I] around `dim` of a result of shape `shape`, and where each (o, i)
// lands in a source tensor with strides `src`: element offsets outer_off[o] and inner_off[i],
// plus dim_stride per unit of the index along dim.
struct IndexGeometry {
  int64_t O = 1, K = 1, I = 1;
  std::vector<int64_t> outer_off, inner_off;
  int64_t dim_stride = 0;
  bool inner_dense = false;  // inner_off[i] == i: rows of I contiguous elements (the usual case)
  // idx(o, k, i) = index[o * is_o + k * is_k + i * is_i] of a contiguous int64 index.
  int64_t is_o = 0, is_k = 0, is_i = 0;
};

IndexGeometry make_geometry(const Shape& shape, const Strides& src, int dim, bool full_index) {
  IndexGeometry g;
  const int n = shape.ndim();
  for (int d = 0; d < dim; ++d) g.O *= shape[d];
  g.K = shape[dim];
  for (int d = dim + 1; d < n; ++d) g.I *= shape[d];
  g.dim_stride = src[dim];
  // Offsets of the row-major positions of shape[lo, hi) under the source strides.
  auto offsets = [&](int lo, int hi, int64_t count) {
    std::vector<int64_t> off(static_cast<size_t>(count));
    for (int64_t p = 0; p < count; ++p) {
      int64_t rem = p, o = 0;
      for (int d = hi - 1; d >= lo; --d) {
        o += (rem % shape[d]) * src[d];
        rem /= shape[d];
      }
      off[static_cast<size_t>(p)] = o;
    }
    return off;
  };
  g.outer_off = offsets(0, dim, g.O);
  g.inner_off = offsets(dim + 1, n, g.I);
  g.inner_dense = true;
  for (int64_t i = 0; i < g.I && g.inner_dense; ++i) g.inner_dense = g.inner_off[static_cast<size_t>(i)] == i;
  if (full_index) {
    g.is_o = g.K * g.I;
    g.is_k = g.I;
    g.is_i = 1;
  } else {
    g.is_k = 1;
  }
  return g;
}

// out[o, k, i] = src[outer_off[o] + idx(o, k, i) * dim_stride + inner_off[i]]; out contiguous.
template <class T>
void gather_kernel(const IndexGeometry& g, const T* src, const int64_t* ip, T* out) {
  const int64_t rows = g.O * g.K;
  parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(g.I, 1)),
               [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r / g.K, k = r % g.K;
      T* orow = out + r * g.I;
      const int64_t* irow = ip + o * g.is_o + k * g.is_k;
      const T* sbase = src + g.outer_off[o];
      if (g.is_i == 0) {  // one index per row
        const T* srow = sbase + irow[0] * g.dim_stride;
        if (g.inner_dense) std::copy(srow, srow + g.I, orow);
        else for (int64_t i = 0; i < g.I; ++i) orow[i] = srow[g.inner_off[i]];
      } else {
        for (int64_t i = 0; i < g.I; ++i) orow[i] = sbase[irow[i] * g.dim_stride + g.inner_off[i]];
      }
    }
  });
}

// dx[outer_off[o] + idx(o, k, i) * dim_stride + inner_off[i]] += gr[o, k, i]; gr contiguous.
// Threads own (o, i) positions; k runs in order (see the file comment).
template <class T>
void scatter_add_kernel(const IndexGeometry& g, const T* gr, const int64_t* ip, T* dx) {
  const int64_t lanes = g.O * g.I;
  parallel_for(0, lanes, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(g.K, 1)),
               [&](int64_t b, int64_t e) {
    for (int64_t pos = b; pos < e;) {
      const int64_t o = pos / g.I, i0 = pos % g.I, i1 = std::min(g.I, i0 + (e - pos));
      T* dbase = dx + g.outer_off[o];
      for (int64_t k = 0; k < g.K; ++k) {
        const T* grow = gr + (o * g.K + k) * g.I;
        const int64_t* irow = ip + o * g.is_o + k * g.is_k;
        if (g.is_i == 0) {
          T* drow = dbase + irow[0] * g.dim_stride;
          if (g.inner_dense) for (int64_t i = i0; i < i1; ++i) drow[i] += grow[i];
          else for (int64_t i = i0; i < i1; ++i) drow[g.inner_off[i]] += grow[i];
        } else {
          for (int64_t i = i0; i < i1; ++i) dbase[irow[i] * g.dim_stride + g.inner_off[i]] += grow[i];
        }
      }
      pos += i1 - i0;
    }
  });
}

void check_index_tensor(const char* op, const Tensor& x, const Tensor& index) {
  check_defined(op, x);
  check_defined(op, index, "index");
  check_dense_dtype(op, x);
  AFT_CHECK(index.dtype() == kInt64, "{}: index must be int64, got {} of shape {}", op, index.dtype(),
            index.shape());
  check_same_device(op, x, index);
}

// Every index value in [0, n); scanned in order so the first bad value is the one reported.
// `where` names what is indexed, e.g. "dim 0 of shape [5, 3]".
void check_index_range(const char* op, const Tensor& index_contig, int64_t n, const std::string& where) {
  const int64_t count = index_contig.numel();
  if (index_contig.is_cuda()) {
    if (count == 0) return;
    Tensor err = full({1}, static_cast<double>(count), {kInt64, index_contig.device()});
    AFT_CUDA_CALL(cuda::index_check(desc(index_contig), n, desc(err)));
    const int64_t bad = err.cpu().data<int64_t>()[0];
    if (bad < count) {
      const int64_t v = index_contig.reshape({count}).narrow(0, bad, 1).cpu().data<int64_t>()[0];
      AFT_ERROR("{}: index {} is out of range [0, {}) for {}", op, v, n, where);
    }
    return;
  }
  const int64_t* p = index_contig.data<int64_t>();
  for (int64_t j = 0; j < count; ++j)
    AFT_CHECK(p[j] >= 0 && p[j] < n, "{}: index {} is out of range [0, {}) for {}", op, p[j], n, where);
}

// The shared forward and backward of index_select, gather and embedding: out (of shape
// out_shape) reads x along dim at the (contiguous, range-checked) index; full_index: the index
// has out's shape (gather), else it is 1-d along dim (index_select).
Tensor indexed_read(const char* op, const Tensor& x, int dim, const Tensor& index, const Shape& out_shape,
                    bool full_index) {
  Tensor out = empty(out_shape, {x.dtype(), x.device()});
  if (x.is_cuda()) {
    AFT_CUDA_CALL(cuda::index_read(desc(x), dim, desc(index), full_index, desc(out)));
  } else {
    IndexGeometry gx = make_geometry(out_shape, x.strides(), dim, full_index);
    dispatch_all(x.dtype(), op, [&]<class T>() {
      gather_kernel<T>(gx, static_cast<const T*>(x.raw_data()), index.data<int64_t>(), out.data<T>());
    });
  }
  if (!autograd::needs_grad(x)) return out;
  Shape xs = x.shape();
  SavedTensor saved_idx(index);  // int64, never tracked; a later in-place change is reported
  autograd::record(op, {x}, {out}, [=](const TensorList& g) {
    Tensor dx = zeros(xs, {g[0].dtype(), g[0].device()});
    Tensor gc = g[0].contiguous();
    if (dx.is_cuda()) {
      AFT_CUDA_CALL(cuda::index_scatter_add(desc(gc), dim, desc(saved_idx.get()), full_index, desc(dx)));
      return TensorList{dx};
    }
    IndexGeometry gd = make_geometry(out_shape, dx.strides(), dim, full_index);
    dispatch_float(dx.dtype(), op, [&]<class T>() {
      scatter_add_kernel<T>(gd, gc.data<T>(), saved_idx.get().data<int64_t>(), dx.data<T>());
    });
    return TensorList{dx};
  });
  return out;
}

}  // namespace

// ------------------------------------------------------------------ public ops

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  AFT_CHECK(!tensors.empty(), "cat: needs at least one tensor");
  const Tensor& t0 = tensors[0];
  check_defined("cat", t0, "tensor 0");
  check_dense_dtype("cat", t0);
  AFT_CHECK(t0.ndim() > 0, "cat: cannot concatenate 0-d tensors (use stack)");
  const int d = wrap_dim(dim, t0.ndim(), "cat");
  Shape out_shape = t0.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_defined("cat", t, "a tensor in the list");
    AFT_CHECK(t.dtype() == t0.dtype() && t.device() == t0.device(),
              "cat: tensor {} is {} on {} but tensor 0 is {} on {}", i, t.dtype(), t.device(), t0.dtype(),
              t0.device());
    bool match = t.ndim() == t0.ndim();
    for (int k = 0; match && k < t0.ndim(); ++k) match = k == d || t.shape()[k] == t0.shape()[k];
    AFT_CHECK(match, "cat: tensor {} has shape {} but tensor 0 has {}; they must match except in dim {}", i,
              t.shape(), t0.shape(), d);
    out_shape[d] += t.shape()[d];
  }
  Tensor out = empty(out_shape, {t0.dtype(), t0.device()});
  std::vector<int64_t> offs;
  int64_t off = 0;
  for (const Tensor& t : tensors) {
    offs.push_back(off);
    // out[..., off + j, ...] = t[..., j, ...]
    copy_into(as_strided(out, t.shape(), out.strides(), out.offset() + off * out.strides()[d]), t, "cat");
    off += t.shape()[d];
  }
  bool any = false;
  for (const Tensor& t : tensors) any = any || autograd::needs_grad(t);
  if (!any) return out;
  std::vector<int64_t> lens;
  for (const Tensor& t : tensors) lens.push_back(t.shape()[d]);
  autograd::record("cat", tensors, {out}, [offs, lens, d](const TensorList& g) {
    TensorList r;
    for (size_t i = 0; i < offs.size(); ++i) r.push_back(g[0].narrow(d, offs[i], lens[i]));
    return r;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  AFT_CHECK(!tensors.empty(), "stack: needs at least one tensor");
  check_defined("stack", tensors[0], "tensor 0");
  const int d = wrap_dim(dim, tensors[0].ndim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined("stack", tensors[i], "a tensor in the list");
    AFT_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor {} has shape {} but tensor 0 has {}",
              i, tensors[i].shape(), tensors[0].shape());
    parts.push_back(tensors[i].unsqueeze(d));
  }
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  check_defined("split", x);
  AFT_CHECK(x.ndim() > 0, "split: cannot split a 0-d tensor");
  const int d = wrap_dim(dim, x.ndim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    AFT_CHECK(s >= 0, "split: sizes must be non-negative, got {}", fmt::join(sizes, ", "));
    total += s;
  }
  AFT_CHECK(!sizes.empty() && total == x.shape()[d],
            "split: sizes [{}] add up to {} but dim {} of shape {} is {}", fmt::join(sizes, ", "), total, d,
            x.shape(), x.shape()[d]);
  // Piece p is the view x[..., off_p : off_p + sizes[p], ...]: no copy.
  std::vector<Tensor> pieces;
  int64_t off = 0;
  for (int64_t s : sizes) {
    Shape ps = x.shape();
    ps[d] = s;
    pieces.push_back(as_strided(x, ps, x.strides(), x.offset() + off * x.strides()[d]));
    off += s;
  }
  if (!autograd::needs_grad(x)) return pieces;
  Shape xs = x.shape();
  autograd::record("split", {x}, pieces, [xs, sizes, d](const TensorList& g) {
    // At least one piece has a gradient (else this node would not run).
    auto first = std::find_if(g.begin(), g.end(), [](const Tensor& t) { return t.defined(); });
    AFT_ASSERT(first != g.end());
    Tensor dx = zeros(xs, {first->dtype(), first->device()});
    int64_t o = 0;
    for (size_t p = 0; p < sizes.size(); ++p) {
      if (g[p].defined()) dx.narrow(d, o, sizes[p]).copy_(g[p]);
      o += sizes[p];
    }
    return TensorList{dx};
  });
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  check_defined("split", x);
  AFT_CHECK(x.ndim() > 0, "split: cannot split a 0-d tensor");
  AFT_CHECK(split_size > 0, "split: split_size must be positive, got {}", split_size);
  const int64_t n = x.shape()[wrap_dim(dim, x.ndim(), "split")];
  // ceil(n / split_size) pieces, the last one shorter; one empty piece when n = 0.
  std::vector<int64_t> sizes;
  for (int64_t o = 0; o < n; o += split_size) sizes.push_back(std::min(split_size, n - o));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index_tensor("index_select", x, index);
  AFT_CHECK(x.ndim() > 0, "index_select: x must have at least one dim, got a 0-d tensor");
  AFT_CHECK(index.ndim() == 1, "index_select: index must be 1-d, got shape {}", index.shape());
  const int d = wrap_dim(dim, x.ndim(), "index_select");
  Tensor idx = index.contiguous();
  check_index_range("index_select", idx, x.shape()[d], fmt::format("dim {} of shape {}", d, x.shape()));
  Shape out_shape = x.shape();
  out_shape[d] = idx.numel();
  return indexed_read("index_select", x, d, idx, out_shape, false);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index_tensor("gather", x, index);
  AFT_CHECK(x.ndim() > 0, "gather: x must have at least one dim, got a 0-d tensor");
  const int d = wrap_dim(dim, x.ndim(), "gather");
  bool fits = index.ndim() == x.ndim();
  for (int k = 0; fits && k < x.ndim(); ++k) fits = k == d || index.shape()[k] <= x.shape()[k];
  AFT_CHECK(fits,
            "gather: index of shape {} does not fit x of shape {}: same number of dims, and no "
            "larger than x except in dim {}", index.shape(), x.shape(), d);
  Tensor idx = index.contiguous();
  check_index_range("gather", idx, x.shape()[d], fmt::format("dim {} of shape {}", d, x.shape()));
  return indexed_read("gather", x, d, idx, index.shape(), true);
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  check_index_tensor("embedding", weight, indices);
  AFT_CHECK(weight.ndim() == 2, "embedding: weight must be 2-d [V, D], got shape {}", weight.shape());
  AFT_CHECK(indices.ndim() < kMaxDims, "embedding: indices of shape {} have too many dims", indices.shape());
  // out[..., :] = weight[indices[...], :], as index_select on the flattened indices.
  Tensor flat = indices.contiguous().reshape({indices.numel()});
  check_index_range("embedding", flat, weight.shape()[0], fmt::format("weight of shape {}", weight.shape()));
  Tensor rows = indexed_read("embedding", weight, 0, flat, Shape{flat.numel(), weight.shape()[1]}, false);
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.shape()[1]);
  return rows.view(out_shape);
}

}  // namespace aft
