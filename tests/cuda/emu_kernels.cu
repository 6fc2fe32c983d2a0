// tests/cuda/emu_kernels.cu: correct CUDA kernels that exercise the SIMT emulator: shared memory
// and barriers, warp shuffles and votes, dynamic shared memory, atomics from many blocks,
// grid-stride loops, 3-D grids, partial warps. Written in aft's CUDA dialect (cuda/compat.h),
// so nvcc compiles them too; tests/cuda/test_emulator.cpp checks their results against plain
// loops under several thread and block orders.
#include "cuda/launch.h"
#include "tests/cuda/emu_kernels.h"

namespace aft::emu_test {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// Lanes of the calling thread's warp that exist: the last warp of a block may be partial.
__device__ unsigned existing_lanes_mask() {
  unsigned warp_start = threadIdx.x / 32 * 32;
  unsigned lanes = min(32u, blockDim.x - warp_start);
  return lanes == 32 ? kFull : (1u << lanes) - 1;
}

// out[b] = sum of the block's elements: s[t] += s[t + stride] for stride = T/2, T/4, ..., 1.
template <class T>
__global__ void __launch_bounds__(1024) block_sum_kernel(const T* x, T* out, int n) {
  AFT_SHARED(T, s, 1024);
  unsigned t = threadIdx.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + t;
  s[t] = i < n ? x[i] : T(0);
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// Butterfly: after steps 16, 8, 4, 2, 1 every lane holds the sum of all 32.
__global__ void warp_allreduce_kernel(const float* x, float* out) {
  unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = x[i];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFull, v, offset);
  out[i] = v;
}

// Inclusive scan: Hillis-Steele within each warp (v += value of lane - d for d = 1, 2, 4, ...),
// then warp 0 scans the warp totals and each warp adds the total of the warps before it.
__global__ void block_scan_kernel(const int* x, int* out, int n) {
  AFT_SHARED(int, warp_totals, 32);
  unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
  unsigned nwarps = (blockDim.x + 31) / 32;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + t;
  int v = i < n ? x[i] : 0;
  unsigned mask = existing_lanes_mask();
  unsigned last_lane = 31 - __clz(static_cast<int>(mask));
  for (unsigned d = 1; d < 32; d *= 2) {
    int u = __shfl_up_sync(mask, v, d);
    if (lane >= d) v += u;
  }
  if (lane == last_lane) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0 && lane < nwarps) {
    unsigned m0 = nwarps == 32 ? kFull : (1u << nwarps) - 1;
    int w = warp_totals[lane];
    for (unsigned d = 1; d < 32; d *= 2) {
      int u = __shfl_up_sync(m0, w, d);
      if (lane >= d) w += u;
    }
    warp_totals[lane] = w;
  }
  __syncthreads();
  if (warp > 0) v += warp_totals[warp - 1];
  if (i < n) out[i] = v;
}

// y[b * T + t] = x[b * T + (T - 1 - t)], staged in dynamic shared memory of T elements.
template <class T>
__global__ void reverse_kernel(const T* x, T* y) {
  AFT_DYN_SHARED(T, buf);
  unsigned t = threadIdx.x, n = blockDim.x;
  size_t base = static_cast<size_t>(blockIdx.x) * n;
  buf[t] = x[base + t];
  __syncthreads();
  y[base + t] = buf[n - 1 - t];
}

// max by compare-and-swap on the float's bits (CUDA has no float atomicMax).
__device__ float atomic_max_float(float* address, float v) {
  int* a = reinterpret_cast<int*>(address);
  int old = *a, assumed;
  do {
    assumed = old;
    if (__int_as_float(assumed) >= v) break;
    old = atomicCAS(a, assumed, __float_as_int(v));
  } while (old != assumed);
  return __int_as_float(old);
}

__global__ void atomics_kernel(const int* x, int n, AtomicResults* r) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    int v = x[i];
    atomicAdd(&r->hist[v % 16], 1);
    atomicAdd(&r->fsum, static_cast<float>(v));
    atomicAdd(&r->dsum, static_cast<double>(v));
    atomicMax(&r->imax, v);
    atomicMin(&r->imin, v);
    atomicAdd(&r->count, 1ull);
    atomic_max_float(&r->fmax, 0.5f * static_cast<float>(v));
    atomicOr(&r->bits, 1u << (v % 32));
    atomicInc(&r->ticket, 999u);
    if (v == 7) atomicExch(&r->exch_seen, 1);
  }
}

// y = a x + y, each thread striding by the whole grid.
__global__ void saxpy_kernel(double a, const double* __restrict__ x, double* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = a * __ldg(&x[i]) + y[i];
}

__global__ void index_3d_kernel(int* out, dim3 expect_grid, dim3 expect_block) {
  unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  bool dims_ok = gridDim.x == expect_grid.x && gridDim.y == expect_grid.y && gridDim.z == expect_grid.z &&
                 blockDim.x == expect_block.x && blockDim.y == expect_block.y && blockDim.z == expect_block.z;
  out[block * threads + t] = dims_ok ? static_cast<int>(threadIdx.x + 10 * threadIdx.y + 100 * threadIdx.z +
                                                        1000 * blockIdx.x + 10000 * blockIdx.y + 100000 * blockIdx.z)
                                     : -1;
}

// Tree reduction down the existing lanes: lane l adds lane l + offset when that lane exists.
__global__ void partial_warp_sum_kernel(const int* x, int* out, int* out2) {
  unsigned t = threadIdx.x, lane = t % 32;
  unsigned mask = existing_lanes_mask();
  unsigned lanes = __popc(mask);
  int v = x[t];
  int total = __reduce_add_sync(mask, v);
  for (unsigned offset = 16; offset > 0; offset /= 2) {
    int other = __shfl_down_sync(mask, v, offset);
    if (lane + offset < lanes) v += other;
  }
  if (lane == 0) {
    out[t / 32] = v;
    out2[t / 32] = total;
  }
}

// One warp, value = 100 + lane. Per lane 16 results:
//   0 __shfl_sync(src 3, width 8)     1 __shfl_sync(src 35)          2 __shfl_up_sync(2, width 8)
//   3 __shfl_down_sync(3, width 8)    4 __shfl_xor_sync(4, width 8)  5 __shfl_xor_sync(12, width 8)
//   6 __shfl_down_sync(1) (width 32)  7 __shfl_up_sync(33): delta uses 5 bits, so 1
//   8 __shfl_sync(src lane^1, double) 9 __shfl_xor_sync(1) on a 64-bit integer (high half kept)
//   10.. 15: unused (0)
__global__ void shuffle_widths_kernel(int* out) {
  unsigned lane = threadIdx.x;
  int v = 100 + static_cast<int>(lane);
  int* o = out + lane * 16;
  o[0] = __shfl_sync(kFull, v, 3, 8);
  o[1] = __shfl_sync(kFull, v, 35);
  o[2] = __shfl_up_sync(kFull, v, 2, 8);
  o[3] = __shfl_down_sync(kFull, v, 3, 8);
  o[4] = __shfl_xor_sync(kFull, v, 4, 8);
  o[5] = __shfl_xor_sync(kFull, v, 12, 8);
  o[6] = __shfl_down_sync(kFull, v, 1);
  o[7] = __shfl_up_sync(kFull, v, 33);
  o[8] = static_cast<int>(__shfl_sync(kFull, static_cast<double>(v) + 0.5, static_cast<int>(lane ^ 1)) * 2);
  long long big = (static_cast<long long>(lane) << 40) | lane;
  long long got = __shfl_xor_sync(kFull, big, 1);
  o[9] = static_cast<int>(got >> 40) * 1000 + static_cast<int>(got & 0xff);
}

__global__ void votes_kernel(int* out) {
  unsigned t = threadIdx.x, lane = t % 32;
  unsigned mask = existing_lanes_mask();
  int* o = out + t * 6;
  o[0] = static_cast<int>(__ballot_sync(mask, lane % 3 == 0));
  o[1] = __any_sync(mask, lane == 5);
  o[2] = __all_sync(mask, lane < 40);
  o[3] = __syncthreads_count(t % 2 == 0);
  o[4] = __syncthreads_and(t < 1000);
  o[5] = __syncthreads_or(t == 7);
}

__global__ void math_kernel(const float* x, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i];
  float* o = out + i * 16;
  o[0] = __expf(v);
  o[1] = expf(v);
  o[2] = __logf(fabsf(v) + 1.0f);
  o[3] = rsqrtf(fabsf(v) + 1.0f);
  o[4] = __fdividef(v, 3.0f);
  o[5] = fmaf(v, 2.0f, 1.0f);
  o[6] = fminf(v, 0.25f) + fmaxf(v, -0.25f);
  o[7] = erff(v);
  o[8] = tanhf(v);
  o[9] = __saturatef(v);
  o[10] = exp2f(v) + log2f(fabsf(v) + 1.0f);
  o[11] = copysignf(1.0f, v);
  o[12] = isinf(INFINITY + v) ? 1.0f : 0.0f;
  o[13] = isnan(sqrtf(-1.0f - fabsf(v))) ? 1.0f : 0.0f;
  o[14] = static_cast<float>(rsqrt(static_cast<double>(fabsf(v)) + 1.0) + exp(static_cast<double>(v)));
  o[15] = static_cast<float>(max(3, static_cast<int>(v * 4)) + min(-3, static_cast<int>(v * 4)));
}

// Warp-level tree in shared memory, made safe on Volta+ by __syncwarp between the steps.
__global__ void warp_smem_sum_kernel(const float* x, float* out) {
  AFT_SHARED(float, s, 32);
  unsigned t = threadIdx.x;
  s[t] = x[t];
  __syncwarp();
  for (unsigned offset = 16; offset > 0; offset /= 2) {
    float v = t < offset ? s[t + offset] : 0.0f;
    __syncwarp();
    if (t < offset) s[t] += v;
    __syncwarp();
  }
  if (t == 0) *out = s[0];
}

}  // namespace

void block_sum(const float* x, float* out, int n, int blocks, int threads) {
  AFT_LAUNCH(block_sum_kernel<float>, blocks, threads, 0, x, out, n);
}
void block_sum(const double* x, double* out, int n, int blocks, int threads) {
  AFT_LAUNCH(block_sum_kernel<double>, blocks, threads, 0, x, out, n);
}
void warp_allreduce(const float* x, float* out, int blocks, int threads) {
  AFT_LAUNCH(warp_allreduce_kernel, blocks, threads, 0, x, out);
}
void block_scan(const int* x, int* out, int n, int blocks, int threads) {
  AFT_LAUNCH(block_scan_kernel, blocks, threads, 0, x, out, n);
}
void reverse_in_block(const double* x, double* y, int blocks, int threads) {
  AFT_LAUNCH(reverse_kernel<double>, blocks, threads, threads * sizeof(double), x, y);
}
void reverse_in_block(const float4* x, float4* y, int blocks, int threads) {
  AFT_LAUNCH(reverse_kernel<float4>, blocks, threads, threads * sizeof(float4), x, y);
}
void atomics(const int* x, int n, AtomicResults* r, int blocks, int threads) {
  AFT_LAUNCH(atomics_kernel, blocks, threads, 0, x, n, r);
}
void saxpy(double a, const double* x, double* y, int64_t n, int blocks, int threads) {
  AFT_LAUNCH(saxpy_kernel, blocks, threads, 0, a, x, y, n);
}
void index_3d(int* out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz) {
  AFT_LAUNCH(index_3d_kernel, dim3(gx, gy, gz), dim3(bx, by, bz), 0, out, dim3(gx, gy, gz), dim3(bx, by, bz));
}
void partial_warp_sum(const int* x, int* out, int* out2, int threads) {
  AFT_LAUNCH(partial_warp_sum_kernel, 1, threads, 0, x, out, out2);
}
void shuffle_widths(int* out) { AFT_LAUNCH(shuffle_widths_kernel, 1, 32, 0, out); }
void votes(int* out, int threads) { AFT_LAUNCH(votes_kernel, 1, threads, 0, out); }
void math(const float* x, float* out, int n) {
  AFT_LAUNCH(math_kernel, cuda::blocks_for(n, 64), 64, 0, x, out, n);
}
void warp_smem_sum(const float* x, float* out) { AFT_LAUNCH(warp_smem_sum_kernel, 1, 32, 0, x, out); }

}  // namespace aft::emu_test
