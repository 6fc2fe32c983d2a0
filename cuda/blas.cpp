// cuda/blas.cpp: the batched matrix multiply of cuda/blas.h.
//
// Real CUDA: one cublasGemmStridedBatchedEx per call. cuBLAS is column-major; a row-major
// [R, C] matrix with row stride ld is, read column-major, its transpose [C, R] with leading
// dimension ld. So the row-major product C = op(A)·op(B) is computed as the column-major
//   Cᵀ [N, M] = op(B)ᵀ [N, K] · op(A)ᵀ [K, M]
// i.e. cuBLAS gets (B, A) swapped, m = N, n = M, and each operand's own transpose flag: a
// non-transposed row-major B is already op(B)ᵀ in column-major (CUBLAS_OP_N), a B stored as
// [N, K] reads as op(B) and needs CUBLAS_OP_T. No operand is copied.
// float32 computes with CUBLAS_COMPUTE_32F (full float32 products) unless set_allow_tf32(true)
// chose CUBLAS_COMPUTE_32F_FAST_TF32; float64 with CUBLAS_COMPUTE_64F. The compute type is
// passed per call, so the shared handle's math mode is never changed.
// The handle (one per device, created on first use, never destroyed: it must outlive every
// tensor freed at exit) runs on the default stream like every kernel of cuda/.
//
// EMULATE: the CPU GEMM of core/gemm/gemm.h, one call per batch entry, on the emulator's device
// memory (host memory).
#include "cuda/blas.h"

#include <atomic>
#include <climits>

#include "core/error.h"
#include "cuda/runtime.h"

#if AFT_CUDA_EMULATE
#include "core/gemm/gemm.h"
#elif AFT_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <vector>
#endif

namespace aft::cuda {

namespace {
std::atomic<bool> g_allow_tf32{false};
}  // namespace

void set_allow_tf32(bool on) { g_allow_tf32.store(on, std::memory_order_relaxed); }
bool allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

#if AFT_WITH_CUDA

namespace {

void check_extents(const GemmBatch& g, const char* op) {
  for (int64_t v : {g.M, g.N, g.K, g.lda, g.ldb, g.ldc, g.batch})
    AFT_CHECK(v >= 0 && v <= INT_MAX,
              "{}: GEMM of [{}, {}] @ [{}, {}] (batch {}, leading dims {}, {}, {}) exceeds the 32-bit "
              "extents of cuBLAS", op, g.M, g.K, g.K, g.N, g.batch, g.lda, g.ldb, g.ldc);
}

#if AFT_CUDA_EMULATE

template <class T>
void emulated(const GemmBatch& g) {
  const T* A = static_cast<const T*>(g.A);
  const T* B = static_cast<const T*>(g.B);
  T* C = static_cast<T*>(g.C);
  for (int64_t z = 0; z < g.batch; ++z)
    gemm<T>(g.trans_a, g.trans_b, g.M, g.N, g.K, T(1), A + z * g.stride_a, g.lda, B + z * g.stride_b, g.ldb,
            T(0), C + z * g.stride_c, g.ldc);
}

#else

void check(cublasStatus_t s, const char* what, const char* op) {
  if (s != CUBLAS_STATUS_SUCCESS)
    AFT_ERROR("{}: {} failed: cuBLAS status {} ({})", op, what, static_cast<int>(s), cublasGetStatusString(s));
}

// The handle of the current device.
cublasHandle_t handle(const char* op) {
  static std::mutex mu;
  static std::vector<cublasHandle_t> handles;
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) AFT_ERROR("{}: cudaGetDevice failed: {}", op, cudaGetErrorString(e));
  std::lock_guard<std::mutex> lock(mu);
  if (static_cast<size_t>(dev) >= handles.size()) handles.resize(dev + 1, nullptr);
  if (!handles[dev]) check(cublasCreate(&handles[dev]), "cublasCreate", op);
  return handles[dev];
}

#endif

}  // namespace

void gemm_strided_batched(DType dtype, const GemmBatch& g, const char* op) {
  AFT_CHECK(dtype == DType::Float32 || dtype == DType::Float64,
            "{}: CUDA GEMM supports float32 and float64 only", op);
  check_extents(g, op);
  if (g.M == 0 || g.N == 0 || g.batch == 0) return;
#if AFT_CUDA_EMULATE
  if (dtype == DType::Float32) emulated<float>(g);
  else emulated<double>(g);
#else
  const bool f32 = dtype == DType::Float32;
  const cudaDataType_t type = f32 ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      f32 ? (allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_64F;
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const void* alpha = f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  const void* beta = f32 ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d);
  const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasGemmStridedBatchedEx(handle(op), op_b, op_a, static_cast<int>(g.N), static_cast<int>(g.M),
                                   static_cast<int>(g.K), alpha, g.B, type, static_cast<int>(g.ldb),
                                   static_cast<long long>(g.stride_b), g.A, type, static_cast<int>(g.lda),
                                   static_cast<long long>(g.stride_a), beta, g.C, type, static_cast<int>(g.ldc),
                                   static_cast<long long>(g.stride_c), static_cast<int>(g.batch), compute,
                                   CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx", op);
#endif
}

#else  // AFT_CUDA=OFF: no CUDA tensor can exist

void gemm_strided_batched(DType, const GemmBatch&, const char* op) { require_device(0, op); }

#endif

}  // namespace aft::cuda
