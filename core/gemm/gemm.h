// core/gemm/gemm.h: the CPU matrix multiply that matmul and the other CPU ops (AFT-full, ...) build on.
//
// Row-major, BLAS-like:  C[M, N] = alpha · op(A) @ op(B) + beta · C
//   op(A) is A [M, K] (element (i, p) at A[i·lda + p]), or with trans_a the transpose of A
//   stored as [K, M] (element (i, p) at A[p·lda + i]); op(B) likewise with [K, N] / [N, K].
// beta = 0 means C is write-only: its old contents (even NaN) are ignored.
//
// The implementation (core/gemm/gemm.cpp) is BLIS-style: blocks of op(A) and op(B) are packed into
// contiguous micro-panels and multiplied by a register-blocked micro-kernel. There is one packed
// GEMM and one micro-kernel set per instruction-set path (core/gemm/kernels.h): AVX-512,
// AVX2+FMA and plain C++ ("scalar"). The widest path the CPU supports is chosen once, at the
// first call, whatever the compiler flags; the environment variable AFT_CPU_ISA=avx512|avx2|scalar
// overrides the choice (a value that is not one of these, or a path this CPU lacks, is an
// aft::Error at the first gemm). gemm runs on aft::parallel_for; called from inside a parallel
// region it runs on the calling thread. For a given path and (M, N, K), every element of C is
// summed in the same order whatever the thread count, so results are reproducible and do not
// depend on the number of threads; different paths may differ in the last bits.
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

// The instruction-set paths of gemm's micro-kernels, narrowest first.
enum class GemmIsa : int { scalar = 0, avx2 = 1, avx512 = 2 };
constexpr GemmIsa kGemmIsas[] = {GemmIsa::scalar, GemmIsa::avx2, GemmIsa::avx512};

// "scalar", "avx2" or "avx512" (the AFT_CPU_ISA spelling).
const char* gemm_isa_name(GemmIsa isa);
// Whether this CPU (and build) can run the path: scalar always; avx2 needs AVX2 and FMA;
// avx512 needs AVX-512F with the OS saving zmm state.
bool gemm_isa_supported(GemmIsa isa);
// The path gemm uses now: AFT_CPU_ISA if set, else the widest supported one.
GemmIsa gemm_isa();
// Switches gemm to `isa` (tests, benchmarks); aft::Error if this CPU cannot run it. Not meant
// to be called while another thread runs a gemm.
void gemm_set_isa(GemmIsa isa);
// The path in use with its tile shapes, e.g. "avx512 (f32 14x32, f64 14x16)".
const char* gemm_kernel_name();

}  // namespace aft
