// cuda/blas.h: the matrix multiply of CUDA tensors (cuda/blas.cpp): cuBLAS on a GPU, the CPU
// GEMM of core/gemm/gemm.h on the emulator's memory in the EMULATE build.
//
// Row-major and BLAS-like, as core/gemm/gemm.h, for `batch` independent products:
//   C_z[M, N] = op(A_z) @ op(B_z)       z = 0 .. batch − 1
//   A_z = A + z·stride_a (elements; stride 0 reuses one matrix), likewise B_z; C_z = C + z·stride_c
//   op(A) is A [M, K] with row stride lda, or with trans_a the transpose of A stored as [K, M];
//   op(B) likewise with [K, N] / [N, K].
// C is write-only (beta = 0). Pointers are device memory of the current device.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace aft::cuda {

// TF32 tensor cores for float32 products (about 10 mantissa bits per product, float32 sums):
// off by default, so float32 matmul on the GPU rounds like the CPU's. A process-wide switch,
// read at every call; float64 is never affected.
void set_allow_tf32(bool on);
bool allow_tf32();

struct GemmBatch {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
};

// Runs the batch (dtype float32 or float64); throws aft::Error naming `op` when cuBLAS fails
// or an extent does not fit cuBLAS's 32-bit arguments.
void gemm_strided_batched(DType dtype, const GemmBatch& g, const char* op);

}  // namespace aft::cuda
