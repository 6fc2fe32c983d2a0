// cuda/optim.cu: fused multi-tensor kernels of the optimizers (nn/optim/optim.cpp): the AdamW step,
// the SGD step (L2 decay, momentum, Nesterov) and the global-norm gradient clip.
//
// Layout of a launch. A model has many parameter tensors, most of them small (biases, norms),
// so one kernel per tensor would be mostly launch overhead. Instead a launch covers up to
// kMaxSlots tensors, passed by value in a SlotBatch (pointers, sizes and per-group
// coefficients; under the 4 KB kernel-parameter limit, so nothing is copied to the device and
// the host never waits). Tensor s is cut into chunks of kChunk elements, one block each:
//   block_start[s] = sum over r < s of ceil(n_r / kChunk)
// and block b finds its tensor by a binary search of block_start, then its 256 threads walk
// their chunk with stride 256 (neighbouring threads, neighbouring elements: coalesced).
//
// Gradient norm: each block writes the float64 sum of g² over its chunk (a fixed shuffle tree,
// cuda/row_reduce.h) to partials[first block of the launch + blockIdx.x]; one more kernel, a
// single block, adds all partials in a fixed order. The result is deterministic: the same
// bits for any block scheduling and any number of launches.
#include "core/math/optim.h"
#include "cuda/launch.h"
#include "cuda/optim.h"
#include "cuda/row_reduce.h"

namespace aft::cuda {
namespace {

using optim_math::AdamWCoef;
using optim_math::kChunk;
using optim_math::ParamSlot;

constexpr int kMaxSlots = 48;
constexpr int kThreads = 256;

// Up to kMaxSlots dense tensors of type T, passed by value (see the file comment). For the
// norm the gradients are in g; for the scaling (which writes them) they are in p.
template <class T>
struct SlotBatch {
  T* p[kMaxSlots];
  const T* g[kMaxSlots];
  T* s1[kMaxSlots];
  T* s2[kMaxSlots];
  int64_t n[kMaxSlots];
  T c0[kMaxSlots], c1[kMaxSlots];
  int block_start[kMaxSlots + 1];
  int count;
};
static_assert(sizeof(SlotBatch<double>) + 64 <= 4096,
              "SlotBatch must fit the kernel-parameter limit");

// The slot of block b: the last s with block_start[s] <= b (block_start[0] = 0).
template <class T>
__device__ __forceinline__ int slot_of(const SlotBatch<T>& batch, int b) {
  int lo = 0, hi = batch.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (batch.block_start[mid] <= b)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// This block's chunk [begin, end) of slot s.
template <class T>
__device__ __forceinline__ void chunk_of(const SlotBatch<T>& batch, int s, int64_t* begin,
                                         int64_t* end) {
  *begin = static_cast<int64_t>(static_cast<int>(blockIdx.x) - batch.block_start[s]) * kChunk;
  const int64_t e = *begin + kChunk;
  *end = e < batch.n[s] ? e : batch.n[s];
}

// p, m, v updated by optim_math::adamw_update; c0 = 1 - lr·wd, c1 = lr / (1 - b1^t) per slot.
template <class T>
__global__ void __launch_bounds__(kThreads) adamw_kernel(SlotBatch<T> batch, AdamWCoef<T> c) {
  const int s = slot_of(batch, static_cast<int>(blockIdx.x));
  int64_t begin, end;
  chunk_of(batch, s, &begin, &end);
  c.decay = batch.c0[s];
  c.step_size = batch.c1[s];
  T* __restrict__ p = batch.p[s];
  const T* __restrict__ g = batch.g[s];
  T* __restrict__ m = batch.s1[s];
  T* __restrict__ v = batch.s2[s];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    T pi = p[i], mi = m[i], vi = v[i];
    optim_math::adamw_update(pi, g[i], mi, vi, c);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

// p (and the momentum buffer s1, when not null) updated by optim_math::sgd_update;
// c0 = wd, c1 = lr per slot.
template <class T>
__global__ void __launch_bounds__(kThreads) sgd_kernel(SlotBatch<T> batch, T mu, bool nesterov) {
  const int s = slot_of(batch, static_cast<int>(blockIdx.x));
  int64_t begin, end;
  chunk_of(batch, s, &begin, &end);
  const T wd = batch.c0[s], lr = batch.c1[s];
  T* __restrict__ p = batch.p[s];
  const T* __restrict__ g = batch.g[s];
  T* __restrict__ buf = batch.s1[s];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    T pi = p[i];
    if (buf) {
      T vi = buf[i];
      optim_math::sgd_update(pi, g[i], &vi, wd, lr, mu, nesterov);
      buf[i] = vi;
    } else {
      optim_math::sgd_update<T>(pi, g[i], nullptr, wd, lr, mu, nesterov);
    }
    p[i] = pi;
  }
}

// partials[blockIdx.x] = sum of g² over this block's chunk, in float64.
template <class T>
__global__ void __launch_bounds__(kThreads)
    sq_norm_partials_kernel(SlotBatch<T> batch, double* partials) {
  AFT_SHARED(double, scratch, 32);
  const int s = slot_of(batch, static_cast<int>(blockIdx.x));
  int64_t begin, end;
  chunk_of(batch, s, &begin, &end);
  const T* g = batch.g[s];
  double acc = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double x = static_cast<double>(g[i]);
    acc += x * x;
  }
  acc = team_reduce(acc, SumOp<double>(), scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// *out = sum of partials[0, n); one block: thread x adds x, x + 256, ... in order, then the
// fixed tree of team_reduce.
__global__ void __launch_bounds__(kThreads)
    sum_partials_kernel(const double* partials, int64_t n, double* out) {
  AFT_SHARED(double, scratch, 32);
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partials[i];
  acc = team_reduce(acc, SumOp<double>(), scratch);
  if (threadIdx.x == 0) *out = acc;
}

// g = g·coef for the gradients in p.
template <class T>
__global__ void __launch_bounds__(kThreads) scale_kernel(SlotBatch<T> batch, T coef) {
  const int s = slot_of(batch, static_cast<int>(blockIdx.x));
  int64_t begin, end;
  chunk_of(batch, s, &begin, &end);
  T* __restrict__ g = batch.p[s];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) g[i] = g[i] * coef;
}

// Calls body(batch, blocks, first_block) for consecutive runs of up to kMaxSlots non-empty slots,
// with `first_block` the number of blocks of the runs before (for the partials' offsets).
template <class T, class F>
void for_each_batch(const ParamSlot* slots, int count, F&& body) {
  SlotBatch<T> batch{};
  int blocks = 0, first_block = 0;
  auto flush = [&] {
    if (batch.count == 0) return;
    batch.block_start[batch.count] = blocks;
    body(batch, blocks, first_block);
    first_block += blocks;
    batch = SlotBatch<T>{};
    blocks = 0;
  };
  for (int i = 0; i < count; ++i) {
    const ParamSlot& sl = slots[i];
    if (sl.n == 0) continue;
    const int k = batch.count++;
    batch.p[k] = static_cast<T*>(sl.p);
    batch.g[k] = static_cast<const T*>(sl.g);
    batch.s1[k] = static_cast<T*>(sl.s1);
    batch.s2[k] = static_cast<T*>(sl.s2);
    batch.n[k] = sl.n;
    batch.c0[k] = static_cast<T>(sl.c0);
    batch.c1[k] = static_cast<T>(sl.c1);
    batch.block_start[k] = blocks;
    const int64_t b = optim_math::chunks_of(sl.n);
    if (b > (int64_t{1} << 30) - blocks)
      raise_error("cuda optimizer: tensor too large for one launch");
    blocks += static_cast<int>(b);
    if (batch.count == kMaxSlots) flush();
  }
  flush();
}

template <class F>
void float_type(DType dt, F&& f) {
  if (dt == DType::Float32)
    f(float{});
  else if (dt == DType::Float64)
    f(double{});
  else
    raise_error("cuda optimizer: only float32 and float64 parameters are supported");
}

}  // namespace

// Launchers (declared in nn/optim/optim.cpp). Slots: dense tensors of dtype dt on the current device.

void adamw_step(DType dt, const ParamSlot* slots, int count, double b1, double b2, double eps,
                double bc2_sqrt) {
  float_type(dt, [&](auto z) {
    using T = decltype(z);
    AdamWCoef<T> c{T(0),
                   T(0),
                   static_cast<T>(b1),
                   static_cast<T>(1.0 - b1),
                   static_cast<T>(b2),
                   static_cast<T>(1.0 - b2),
                   static_cast<T>(bc2_sqrt),
                   static_cast<T>(eps)};
    for_each_batch<T>(slots, count, [&](const SlotBatch<T>& batch, int blocks, int) {
      AFT_LAUNCH(adamw_kernel<T>, blocks, kThreads, 0, batch, c);
    });
  });
}

void sgd_step(DType dt, const ParamSlot* slots, int count, double momentum, bool nesterov) {
  float_type(dt, [&](auto z) {
    using T = decltype(z);
    for_each_batch<T>(slots, count, [&](const SlotBatch<T>& batch, int blocks, int) {
      AFT_LAUNCH(sgd_kernel<T>, blocks, kThreads, 0, batch, static_cast<T>(momentum), nesterov);
    });
  });
}

// partials: one double per chunk of every slot (sum of chunks_of(n)), in slot order.
void grad_sq_norm_partials(DType dt, const ParamSlot* slots, int count, double* partials) {
  float_type(dt, [&](auto z) {
    using T = decltype(z);
    for_each_batch<T>(slots, count, [&](const SlotBatch<T>& batch, int blocks, int first) {
      AFT_LAUNCH(sq_norm_partials_kernel<T>, blocks, kThreads, 0, batch, partials + first);
    });
  });
}

void sum_partials(const double* partials, int64_t n, double* out) {
  AFT_LAUNCH(sum_partials_kernel, 1, kThreads, 0, partials, n, out);
}

// The gradients are the slots' p.
void scale_grads(DType dt, const ParamSlot* slots, int count, double coef) {
  float_type(dt, [&](auto z) {
    using T = decltype(z);
    for_each_batch<T>(slots, count, [&](const SlotBatch<T>& batch, int blocks, int) {
      AFT_LAUNCH(scale_kernel<T>, blocks, kThreads, 0, batch, static_cast<T>(coef));
    });
  });
}

}  // namespace aft::cuda
