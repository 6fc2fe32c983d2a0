// tests/cuda/emu_kernels.h: launchers of the SIMT emulator's test kernels, for
// tests/cuda/test_emulator.cpp. Pointers are device memory (host memory in the emulator).
//
//   tests/cuda/emu_kernels.cu         correct kernels: must give the same answer in every order
//   tests/cuda/emu_broken_kernels.cu  deliberately wrong kernels: the emulator must catch each
#pragma once

#include <cstdint>

#include "cuda/compat.h"  // float4

namespace aft::emu_test {

// ---- correct kernels (emu_kernels.cu)

// out[b] = sum of x[b * threads .. (b + 1) * threads) (0 past n); shared-memory tree, barriers.
// threads: a power of two up to 1024.
void block_sum(const float* x, float* out, int n, int blocks, int threads);
void block_sum(const double* x, double* out, int n, int blocks, int threads);
// out[i] = sum of the 32 values of i's warp (__shfl_xor_sync butterfly).
void warp_allreduce(const float* x, float* out, int blocks, int threads);
// out = inclusive prefix sum of x within each block (__shfl_up_sync per warp, then across warps
// through shared memory); any block size, including partial last warps.
void block_scan(const int* x, int* out, int n, int blocks, int threads);
// y = x reversed within each block, through dynamic shared memory.
void reverse_in_block(const double* x, double* y, int blocks, int threads);
void reverse_in_block(const float4* x, float4* y, int blocks, int threads);

struct AtomicResults {
  int hist[16];
  float fsum;
  double dsum;
  int imax, imin;
  unsigned long long count;
  float fmax;        // by a compare-and-swap loop
  unsigned bits;     // atomicOr
  unsigned ticket;   // atomicInc wrapping at 1000
  int exch_seen;     // atomicExch
};
// Every atomic from many blocks over x[0, n); r must be device memory, initialised by the caller.
void atomics(const int* x, int n, AtomicResults* r, int blocks, int threads);

// y = a * x + y with a grid-stride loop over n (grid deliberately smaller than n / threads).
void saxpy(double a, const double* x, double* y, int64_t n, int blocks, int threads);
// out[global linear id] = tx + 10 ty + 100 tz + 1000 bx + 10000 by + 100000 bz, or -1 if
// blockDim / gridDim read wrong; grid and block are 3-D.
void index_3d(int* out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);
// out[warp] = sum over the warp's existing lanes (blockDim need not be a multiple of 32):
// __shfl_down_sync with a computed mask, and __reduce_add_sync as a cross-check in out2.
void partial_warp_sum(const int* x, int* out, int* out2, int threads);
// The width rules of the shuffles, 16 results per thread (one warp); see the kernel.
void shuffle_widths(int* out);
// Votes: per thread ballot/any/all and __syncthreads_count/and/or results (6 ints).
void votes(int* out, int threads);
// Math intrinsics of x, 16 results per element.
void math(const float* x, float* out, int n);
// Warp-level shared-memory reduction that is correct because it uses __syncwarp.
void warp_smem_sum(const float* x, float* out);

// ---- broken kernels (emu_broken_kernels.cu)

void oob_global_read(const float* x, float* y, int n);   // reads x[n]
void oob_shared_write(float* y);                          // writes s[32] of a 32-float array
void missing_sync_sum(const float* x, float* out, int threads);  // no barrier after the load
void stale_shared(const float* x, float* y, int threads); // no barrier between two rounds
void implicit_warp_sync(const float* x, float* out);      // warp reduction without __syncwarp
void divergent_barrier_exit(float* y, int blocks = 1);    // half the block skips __syncthreads
void divergent_barrier_branches(float* y);                // if / else with a barrier each
void early_return_barrier(const float* x, float* y, int n, int threads);
void shuffle_mask_without_caller(float* y);               // mask lacks the calling lanes
void shuffle_lane_never_arrives(float* y);                // named lanes wait at a barrier
void shuffle_lanes_disagree(float* y);                    // ballot vs shuffle with one mask
void unwritten_shared_float(const float* x, float* y);    // reads s[63], never written
void unwritten_shared_int(int* y);
void partial_warp_full_mask(const float* x, float* out);  // 48 threads, unguarded full mask
void too_much_shared(float* y);                           // 52 000 bytes of AFT_SHARED
// float4 loads from x + offset + 4t, double2 stores to y + offset + 2t: misaligned unless the
// offset is a multiple of 4 floats / 2 doubles (x, y 16-byte aligned).
void misaligned_float4_load(const float* x, float* y, int offset, int threads);
void misaligned_double2_store(double* y, int offset, int threads);
// *out = number of threads, counted in shared memory by a plain += (a race) or atomicAdd.
void shared_counter(int* out, bool atomic, int threads);
// y[0] += x[t] by every thread of one block: plain (a race) or atomicAdd.
void global_accumulate(const float* x, float* y, bool atomic, int threads);

}  // namespace aft::emu_test
