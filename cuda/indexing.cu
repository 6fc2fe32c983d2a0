// cuda/indexing.cu: the indexed reads index_select, gather and embedding, their scatter-add
// backward, and the check of the index values; the formulas of ops/shape_ops.cpp.
//
// With the index space [O, K, I] of the result (O = extents before dim, K = along dim,
// I = after dim) and idx(o, k, i) = index[k] (index_select, embedding) or index[o, k, i]
// (gather, the index having the result's shape):
//   read:        out[o, k, i] = x[o, idx(o, k, i), i]
//   scatter-add: dx[o, r, i]  = sum over k with idx(o, k, i) = r of g[o, k, i]
//
// Thread mapping and why:
//   check: one thread per index value; a value outside [0, n) lowers *err to its position
//     (atomicMin, so the first bad position wins whatever the order) and the op reports it on
//     the host with the CPU's message. The read kernel also refuses a bad value (writes 0), so
//     nothing is ever read out of bounds.
//   read: one thread per output element (grid-stride), any strides of x; neighbouring threads
//     write neighbouring outputs, and for embedding read neighbouring columns of a row.
//   scatter-add: one thread per lane (o, i), walking k = 0, 1, ..., K-1 in order and adding
//     g[o, k, i] into dx[o, idx(o, k, i), i]. Every dx element belongs to exactly one lane, so
//     there are no atomics, and its sum runs over k in increasing order starting from 0:
//     deterministic, and bit for bit the CPU's sum. Repeated indices just add again. The price
//     is parallelism O·I (embedding: D threads, each walking all B·T indices); neighbouring
//     threads take neighbouring i, so each step is a coalesced read of g and write of dx.
#include "cuda/indexing.h"
#include "cuda/kernel_common.h"

namespace aft::cuda {
namespace {

// Geometry of the result (its shape) against the indexed tensor (x for reads, dx for the
// scatter): that tensor's element strides and its extent along dim (the valid index range).
struct IndexGeom {
  int ndim = 0, dim = 0;
  int64_t shape[8] = {};
  int64_t strides[8] = {};
  int64_t n_dim = 0;
  bool full_index = false;
};

// *err = min(*err, j) for every j with index[j] outside [0, n)
__global__ void index_check_kernel(const int64_t* index, int64_t count, int64_t n, long long* err) {
  AFT_KERNEL_LOOP(j, count) {
    const int64_t v = index[j];
    if (v < 0 || v >= n) atomicMin(err, static_cast<long long>(j));
  }
}

// out[e] = x[offset of e's (o, i) + idx * stride(dim)], e the row-major position in out
template <class T>
__global__ void index_read_kernel(const T* x, const int64_t* index, T* out, int64_t n, IndexGeom g) {
  AFT_KERNEL_LOOP(e, n) {
    int64_t rem = e, off = 0, k = 0;
    for (int d = g.ndim - 1; d >= 0; --d) {
      const int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      if (d == g.dim) k = c;
      else off += c * g.strides[d];
    }
    const int64_t v = index[g.full_index ? e : k];
    out[e] = (v >= 0 && v < g.n_dim) ? x[off + v * g.strides[g.dim]] : T(0);  // checked before
  }
}

// For each lane (o, i), k in order:  dx[o, idx(o, k, i), i] += g[o, k, i]   (g contiguous)
template <class T>
__global__ void index_scatter_add_kernel(const T* g, const int64_t* index, T* dx, int64_t O, int64_t K,
                                         int64_t I, IndexGeom geo) {
  AFT_KERNEL_LOOP(lane, O * I) {
    const int64_t o = lane / I, i = lane % I;
    int64_t base = 0, rem = i;
    for (int d = geo.ndim - 1; d > geo.dim; --d) {
      base += (rem % geo.shape[d]) * geo.strides[d];
      rem /= geo.shape[d];
    }
    rem = o;
    for (int d = geo.dim - 1; d >= 0; --d) {
      base += (rem % geo.shape[d]) * geo.strides[d];
      rem /= geo.shape[d];
    }
    const int64_t stride = geo.strides[geo.dim];
    for (int64_t k = 0; k < K; ++k) {
      const int64_t pos = (o * K + k) * I + i;
      const int64_t v = index[geo.full_index ? pos : k];
      if (v >= 0 && v < geo.n_dim) dx[base + v * stride] += g[pos];  // checked by the forward
    }
  }
}

IndexGeom make_geom(const TensorDesc& result, const TensorDesc& indexed, int dim, bool full_index) {
  IndexGeom g;
  g.ndim = result.ndim;
  g.dim = dim;
  for (int d = 0; d < result.ndim; ++d) {
    g.shape[d] = result.shape[d];
    g.strides[d] = indexed.strides[d];
  }
  g.n_dim = indexed.shape[dim];
  g.full_index = full_index;
  return g;
}

}  // namespace

// err [1] int64 holding index.numel(); lowered to the first position whose value is not in [0, n).
void index_check(const TensorDesc& index, int64_t n, const TensorDesc& err) {
  const int64_t count = index.numel();
  AFT_LAUNCH(index_check_kernel, loop_blocks(count), kLoopThreads, 0, index.ptr<const int64_t>(), count, n,
             reinterpret_cast<long long*>(err.data));
}

// out (contiguous, the result's shape) = x read along dim at index (contiguous; 1-d along dim,
// or of out's shape when full_index). x any strides, any dtype.
void index_read(const TensorDesc& x, int dim, const TensorDesc& index, bool full_index, const TensorDesc& out) {
  const IndexGeom g = make_geom(out, x, dim, full_index);
  const int64_t n = out.numel();
  with_any_type(x.dtype, [&](auto z) {
    using T = decltype(z);
    AFT_LAUNCH(index_read_kernel<T>, loop_blocks(n), kLoopThreads, 0, x.ptr<const T>(),
               index.ptr<const int64_t>(), out.ptr<T>(), n, g);
  });
}

// dx (zeros, x's shape, any strides) += scatter of g (contiguous, the result's shape) along dim.
// 64-thread blocks: the lanes are few (embedding: D), so they spread over more multiprocessors.
void index_scatter_add(const TensorDesc& g, int dim, const TensorDesc& index, bool full_index,
                       const TensorDesc& dx) {
  const IndexGeom geo = make_geom(g, dx, dim, full_index);
  int64_t O = 1, I = 1;
  for (int d = 0; d < dim; ++d) O *= g.shape[d];
  for (int d = dim + 1; d < g.ndim; ++d) I *= g.shape[d];
  const int64_t K = g.shape[dim];
  with_float_type(g.dtype, [&](auto z) {
    using T = decltype(z);
    const unsigned blocks = blocks_for(O * I, 64) < 65535 ? blocks_for(O * I, 64) : 65535;
    AFT_LAUNCH(index_scatter_add_kernel<T>, blocks, 64, 0, g.ptr<const T>(),
               index.ptr<const int64_t>(), dx.ptr<T>(), O, K, I, geo);
  });
}

}  // namespace aft::cuda
