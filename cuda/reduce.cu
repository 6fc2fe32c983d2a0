// cuda/reduce.cu: sum and max reductions over any set of dims (and argmax along one dim).
//
// out[o] = sum (or max) of x over the reduced dims, o ranging over the kept dims.
// This first version gives each output element one thread, which walks its reduced elements
// in x's index order (so max ties pick the first index, as on the CPU) and accumulates in
// double for float32 sums. Correct for any strides; fast only when there are many outputs.
#include "cuda/desc.h"
#include "cuda/launch.h"
#include "cuda/reduce.h"

namespace aft::cuda {
namespace {

struct ReduceGeom {
  int nk = 0, nr = 0;
  int64_t kshape[8] = {}, kx[8] = {}, ko[8] = {};  // kept dims: extents, x strides, out strides
  int64_t rshape[8] = {}, rx[8] = {};             // reduced dims: extents, x strides
  int64_t nout = 1, nred = 1;
};

template <class T, class Acc>
__global__ void reduce_kernel(int kind, const T* x, T* out, int64_t* argmax, ReduceGeom g) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < g.nout;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rem = o, xo = 0, oo = 0;
    for (int d = g.nk - 1; d >= 0; --d) {
      int64_t i = rem % g.kshape[d];
      rem /= g.kshape[d];
      xo += i * g.kx[d];
      oo += i * g.ko[d];
    }
    Acc acc = 0;
    T best = 0;
    int64_t best_r = 0;
    for (int64_t r = 0; r < g.nred; ++r) {
      int64_t rr = r, off = xo;
      for (int d = g.nr - 1; d >= 0; --d) {
        off += (rr % g.rshape[d]) * g.rx[d];
        rr /= g.rshape[d];
      }
      T v = x[off];
      if (kind == 0) {
        acc += static_cast<Acc>(v);
      } else if (r == 0 || (best == best && (v > best || v != v))) {
        best = v;
        best_r = r;
      }
    }
    out[oo] = kind == 0 ? static_cast<T>(acc) : best;
    if (argmax) argmax[oo] = best_r;
  }
}

}  // namespace

void reduce(int kind, const TensorDesc& x, const bool* reduced, const TensorDesc& out_keep,
            const TensorDesc* argmax_keep) {
  ReduceGeom g;
  for (int d = 0; d < x.ndim; ++d) {
    if (reduced[d]) {
      g.rshape[g.nr] = x.shape[d];
      g.rx[g.nr++] = x.strides[d];
      g.nred *= x.shape[d];
    } else {
      g.kshape[g.nk] = x.shape[d];
      g.kx[g.nk] = x.strides[d];
      g.ko[g.nk++] = out_keep.strides[d];
      g.nout *= x.shape[d];
    }
  }
  if (kind != 0 && g.nred == 0 && g.nout > 0)
    raise_error("amax/max: cannot take the maximum over an empty dimension");
  int64_t* am = argmax_keep ? argmax_keep->ptr<int64_t>() : nullptr;
  unsigned grid = blocks_for(g.nout, 256);
  if (grid > 65535) grid = 65535;
  if (x.dtype == DType::Float32)
    AFT_LAUNCH((reduce_kernel<float, double>), grid, 256, 0, kind, x.ptr<const float>(),
               out_keep.ptr<float>(), am, g);
  else
    AFT_LAUNCH((reduce_kernel<double, double>), grid, 256, 0, kind, x.ptr<const double>(),
               out_keep.ptr<double>(), am, g);
}

}  // namespace aft::cuda
