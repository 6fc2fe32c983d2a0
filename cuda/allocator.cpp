// cuda/allocator.cpp: device memory for CUDA tensors.
//
// For now every block goes straight to cudaMalloc/cudaFree (or, in the emulator, to the host
// heap, one exact-size block per tensor so AddressSanitizer sees overruns).
#include <cstdlib>

#include "core/error.h"
#include "cuda/runtime.h"

#if AFT_WITH_CUDA && !AFT_CUDA_EMULATE
#include <cuda_runtime.h>
#endif

namespace aft::cuda {

#if AFT_WITH_CUDA
void* allocate(size_t bytes, int device) {
  if (bytes == 0) return nullptr;
  require_device(device, "allocate");
#if AFT_CUDA_EMULATE
  void* p = std::malloc(bytes);
  AFT_CHECK(p != nullptr, "cuda out of memory: asked for {} bytes", bytes);
  return p;
#else
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    AFT_ERROR("cuda out of memory: asked for {} bytes; {} of {} bytes free on cuda:{}", bytes,
              free_b, total_b, device);
  }
  return p;
#endif
}

void deallocate(void* p, size_t, int) {
  if (!p) return;
#if AFT_CUDA_EMULATE
  std::free(p);
#else
  cudaFree(p);
#endif
}
#endif

}  // namespace aft::cuda
