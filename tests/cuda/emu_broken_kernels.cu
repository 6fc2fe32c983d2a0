// tests/cuda/emu_broken_kernels.cu: deliberately wrong kernels, one per kind of bug the SIMT
// emulator must catch (tests/cuda/test_emulator.cpp expects each to be caught). Compiled only
// in EMULATE builds: on a GPU they would hang, fault or silently give wrong answers.
//
// Each comment says what is wrong and how the emulator shows it.
#include "cuda/launch.h"
#include "tests/cuda/emu_kernels.h"

namespace aft::emu_test {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// Off by one: thread i reads x[i + 1], so the last reads one past the end.
// Caught by AddressSanitizer (heap-buffer-overflow: device memory is one heap block per buffer).
__global__ void oob_global_read_kernel(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i + 1];
}

// Writes one past a shared array. Caught by AddressSanitizer (shared memory is an exact-size
// heap block per block).
__global__ void oob_shared_write_kernel(float* y) {
  AFT_SHARED(float, s, 32);
  unsigned t = threadIdx.x;
  s[t + 1] = static_cast<float>(t);
  __syncthreads();
  y[t] = s[t];
}

// Block sum missing the barrier between the loads and the tree: thread t may add s[t + stride]
// before thread t + stride stored it. Forward order reads the 0xFF poison (NaN); reverse order
// happens to be right: only running several orders catches it.
__global__ void missing_sync_sum_kernel(const float* x, float* out) {
  AFT_SHARED(float, s, 1024);
  unsigned t = threadIdx.x;
  s[t] = x[t];
  // __syncthreads() missing here
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) *out = s[0];
}

// Two rounds over the same shared array with no barrier between reading round 1 and writing
// round 2: y[t] should be 2 x[t + 1], but thread t may read s[t + 1] after its owner overwrote
// it. No poison involved (everything was written): the orders give different results.
__global__ void stale_shared_kernel(const float* x, float* y) {
  AFT_SHARED(float, s, 1024);
  unsigned t = threadIdx.x, n = blockDim.x;
  s[t] = x[t];
  __syncthreads();
  float right = s[(t + 1) % n];
  // __syncthreads() missing here
  s[t] = 2.0f * right;
  __syncthreads();
  y[t] = s[t];
}

// Pre-Volta "warp-synchronous" reduction: relies on the 32 lanes running in lock-step, which
// no GPU since Volta guarantees (it needs __syncwarp between the steps). The emulator runs each
// lane's steps in one go, so the result depends on the order.
__global__ void implicit_warp_sync_kernel(const float* x, float* out) {
  AFT_SHARED(float, s, 64);
  unsigned t = threadIdx.x;
  s[t] = x[t];
  s[t + 32] = 0.0f;
  __syncwarp();
  volatile float* vs = s;
  vs[t] = vs[t] + vs[t + 16];
  vs[t] = vs[t] + vs[t + 8];
  vs[t] = vs[t] + vs[t + 4];
  vs[t] = vs[t] + vs[t + 2];
  vs[t] = vs[t] + vs[t + 1];
  if (t == 0) *out = vs[0];
}

// A barrier only half the block reaches: threads 16-31 skip it and exit. A GPU hangs (or worse).
__global__ void divergent_barrier_exit_kernel(float* y) {
  unsigned t = threadIdx.x;
  if (t < 16) __syncthreads();
  y[t] = 1.0f;
}

// Each branch has its own barrier: two different barriers, undefined on a GPU.
__global__ void divergent_barrier_branches_kernel(float* y) {
  unsigned t = threadIdx.x;
  if (t % 2 == 0) {
    y[t] = 1.0f;
    __syncthreads();
  } else {
    y[t] = 2.0f;
    __syncthreads();
  }
}

// The classic: threads past the end return, then the rest wait at a barrier forever.
__global__ void early_return_barrier_kernel(const float* x, float* y, int n) {
  AFT_SHARED(float, s, 256);
  int i = threadIdx.x;
  if (i >= n) return;
  s[i] = x[i];
  __syncthreads();
  y[i] = s[(i + 1) % n];
}

// Lanes 16-31 call with a mask that names only lanes 0-15.
__global__ void shuffle_mask_without_caller_kernel(float* y) {
  unsigned t = threadIdx.x;
  y[t] = __shfl_xor_sync(0x0000ffffu, static_cast<float>(t), 1);
}

// Lanes 0-15 shuffle with the full mask while lanes 16-31 went on to a barrier.
__global__ void shuffle_lane_never_arrives_kernel(float* y) {
  unsigned t = threadIdx.x;
  float v = static_cast<float>(t);
  if (t < 16) v += __shfl_down_sync(kFull, v, 8);
  __syncthreads();
  y[t] = v;
}

// Same mask, different collectives: half the warp votes while the other half shuffles.
__global__ void shuffle_lanes_disagree_kernel(float* y) {
  unsigned t = threadIdx.x;
  if (t < 16)
    y[t] = static_cast<float>(__ballot_sync(kFull, 1));
  else
    y[t] = __shfl_sync(kFull, 1.0f, 0);
}

// Only s[0..62] is written; thread 63 reads s[63]: the poison (NaN) reaches y[63].
__global__ void unwritten_shared_float_kernel(const float* x, float* y) {
  AFT_SHARED(float, s, 64);
  unsigned t = threadIdx.x;
  if (t < 63) s[t] = x[t];
  __syncthreads();
  y[t] = s[t];
}

// The same with integers: the poison reads as -1.
__global__ void unwritten_shared_int_kernel(int* y) {
  AFT_SHARED(int, s, 64);
  unsigned t = threadIdx.x;
  if (t != 10) s[t] = static_cast<int>(t);
  __syncthreads();
  y[t] = s[t];
}

// 48 threads: the second warp has lanes 0-15 only, yet the reduction reads lanes 16-31
// unguarded (full mask, no `lane + offset < lanes` test). The reads of missing lanes return
// the poison, so warp 1's sum is NaN.
__global__ void partial_warp_full_mask_kernel(const float* x, float* out) {
  unsigned t = threadIdx.x;
  float v = x[t];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFull, v, offset);
  if (t % 32 == 0) out[t / 32] = v;
}

// 13 000 floats of shared memory: more than the 48 KiB a block may have (nvcc refuses this one
// at compile time, "uses too much shared data"; the emulator at the launch).
__global__ void too_much_shared_kernel(float* y) {
  AFT_SHARED(float, big, 13000);
  big[threadIdx.x] = 1.0f;
  __syncthreads();
  y[threadIdx.x] = big[threadIdx.x];
}


// Vector loads and stores need an address aligned to the vector's size; `offset` floats past an
// aligned base breaks that unless it is a multiple of 4 (float4) / 2 doubles (double2). A GPU
// stops the kernel ("misaligned address"); on x86 the same read computes a value. The emulator
// reports it (offset 0 is the correct twin, which it must not flag).
__global__ void misaligned_float4_load_kernel(const float* x, float* y, int offset) {
  unsigned t = threadIdx.x;
  float4 v = *reinterpret_cast<const float4*>(x + offset + 4 * t);
  y[t] = v.x + v.y + v.z + v.w;
}
__global__ void misaligned_double2_store_kernel(double* y, int offset) {
  unsigned t = threadIdx.x;
  *reinterpret_cast<double2*>(y + offset + 2 * t) = make_double2(t, -double(t));
}

// Every thread of the block adds to one shared counter without an atomic: a lost update on a
// GPU (the adds of a warp happen at once), the right count here, where each thread runs alone
// until it waits. `atomic` = 1 is the correct twin (atomicAdd).
__global__ void shared_counter_kernel(int* out, int atomic) {
  AFT_SHARED(int, count, 1);
  if (threadIdx.x == 0) *count = 0;
  __syncthreads();
  if (atomic)
    atomicAdd(count, 1);
  else
    *count += 1;
  __syncthreads();
  if (threadIdx.x == 0) *out = *count;
}

// The same in global memory: every thread of a block does y[0] += x[t] (a non-atomic
// read-modify-write of one address). `atomic` = 1: atomicAdd, correct.
__global__ void global_accumulate_kernel(const float* x, float* y, int atomic) {
  unsigned t = threadIdx.x;
  if (atomic)
    atomicAdd(y, x[t]);
  else
    y[0] += x[t];
}

}  // namespace

void oob_global_read(const float* x, float* y, int n) {
  AFT_LAUNCH(oob_global_read_kernel, cuda::blocks_for(n, 32), 32, 0, x, y, n);
}
void oob_shared_write(float* y) { AFT_LAUNCH(oob_shared_write_kernel, 1, 32, 0, y); }
void missing_sync_sum(const float* x, float* out, int threads) {
  AFT_LAUNCH(missing_sync_sum_kernel, 1, threads, 0, x, out);
}
void stale_shared(const float* x, float* y, int threads) {
  AFT_LAUNCH(stale_shared_kernel, 1, threads, 0, x, y);
}
void implicit_warp_sync(const float* x, float* out) { AFT_LAUNCH(implicit_warp_sync_kernel, 1, 32, 0, x, out); }
void divergent_barrier_exit(float* y, int blocks) {
  AFT_LAUNCH(divergent_barrier_exit_kernel, blocks, 32, 0, y);
}
void divergent_barrier_branches(float* y) { AFT_LAUNCH(divergent_barrier_branches_kernel, 1, 32, 0, y); }
void early_return_barrier(const float* x, float* y, int n, int threads) {
  AFT_LAUNCH(early_return_barrier_kernel, 1, threads, 0, x, y, n);
}
void shuffle_mask_without_caller(float* y) { AFT_LAUNCH(shuffle_mask_without_caller_kernel, 1, 32, 0, y); }
void shuffle_lane_never_arrives(float* y) { AFT_LAUNCH(shuffle_lane_never_arrives_kernel, 1, 32, 0, y); }
void shuffle_lanes_disagree(float* y) { AFT_LAUNCH(shuffle_lanes_disagree_kernel, 1, 32, 0, y); }
void unwritten_shared_float(const float* x, float* y) {
  AFT_LAUNCH(unwritten_shared_float_kernel, 1, 64, 0, x, y);
}
void unwritten_shared_int(int* y) { AFT_LAUNCH(unwritten_shared_int_kernel, 1, 64, 0, y); }
void partial_warp_full_mask(const float* x, float* out) {
  AFT_LAUNCH(partial_warp_full_mask_kernel, 1, 48, 0, x, out);
}
void too_much_shared(float* y) { AFT_LAUNCH(too_much_shared_kernel, 1, 32, 0, y); }

void misaligned_float4_load(const float* x, float* y, int offset, int threads) {
  AFT_LAUNCH(misaligned_float4_load_kernel, 1, threads, 0, x, y, offset);
}
void misaligned_double2_store(double* y, int offset, int threads) {
  AFT_LAUNCH(misaligned_double2_store_kernel, 1, threads, 0, y, offset);
}
void shared_counter(int* out, bool atomic, int threads) {
  AFT_LAUNCH(shared_counter_kernel, 1, threads, 0, out, atomic ? 1 : 0);
}
void global_accumulate(const float* x, float* y, bool atomic, int threads) {
  AFT_LAUNCH(global_accumulate_kernel, 1, threads, 0, x, y, atomic ? 1 : 0);
}

}  // namespace aft::emu_test
