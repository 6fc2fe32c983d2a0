// cuda/compat.h: the one header every .cu file includes first. It makes the CUDA dialect of
// aft's kernels available in both build modes:
//   real CUDA (nvcc):  the CUDA runtime headers, nothing else;
//   EMULATE (g++):     the SIMT emulator (cuda/emu/), which defines threadIdx, __syncthreads,
//                      the shuffles, atomics and math intrinsics for host C++.
// Kernels declare shared memory with AFT_SHARED / AFT_DYN_SHARED (a plain `__shared__` does
// not compile in EMULATE mode) and are launched with AFT_LAUNCH (cuda/launch.h).
#pragma once

#include <cstdint>

#if AFT_CUDA_EMULATE
// AFT_SHARED and AFT_DYN_SHARED are defined there too, on the emulator's per-block memory.
#include "cuda/emu/emulator.h"
#else
#include <cuda_runtime.h>
// Static shared memory: AFT_SHARED(float, tile, 256) declares `float tile[256]` for the block.
#define AFT_SHARED(type, name, count) __shared__ type name[count]
// Dynamic shared memory (sized at launch): AFT_DYN_SHARED(float, buf) declares `float* buf`
// (16-byte aligned, so any type up to float4 / double2 may be stored there).
#define AFT_DYN_SHARED(type, name) \
  extern __shared__ __align__(16) unsigned char aft_dyn_smem_##name[]; \
  type* name = reinterpret_cast<type*>(aft_dyn_smem_##name)
#endif
