// core/gemm/gemm.h: the CPU matrix multiply that matmul and the other CPU ops (AFT-full, ...) build on.
//
// Row-major, BLAS-like:  C[M, N] = alpha · op(A) @ op(B) + beta · C
//   op(A) is A [M, K] (element (i, p) at A[i·lda + p]), or with trans_a the transpose of A
//   stored as [K, M] (element (i, p) at A[p·lda + i]); op(B) likewise with [K, N] / [N, K].
// beta = 0 means C is write-only: its old contents (even NaN) are ignored.
//
// The implementation (core/gemm/gemm.cpp) is BLIS-style: blocks of op(A) and op(B) are packed into
// contiguous micro-panels and multiplied by a register-blocked micro-kernel, AVX2+FMA when the
// CPU has it (chosen at run time, whatever the compiler flags), portable C++ otherwise. It runs
// on aft::parallel_for; called from inside a parallel region it runs on the calling thread. A
// given (M, N, K) always sums in the same order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace aft {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

extern template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                 int64_t, const float*, int64_t, float, float*, int64_t);
extern template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                  int64_t, const double*, int64_t, double, double*, int64_t);

// Which micro-kernel gemm uses: "avx2+fma" or "portable".
const char* gemm_kernel_name();
// Forces the portable micro-kernel (for tests and benchmarks of the fallback); false restores
// the run-time choice. Not meant to be flipped while another thread runs a gemm.
void gemm_force_portable(bool on);

}  // namespace aft
