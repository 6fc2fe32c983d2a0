// cuda/allocator.cpp: device memory for CUDA tensors, through the caching allocator
// (core/caching_allocator.h): cudaMalloc/cudaFree on a GPU; exact-size host blocks, not
// cached, in the SIMT emulator (so AddressSanitizer sees overruns and uses after free).
#include <cstdlib>

#include "core/error.h"
#include "core/caching_allocator.h"
#include "cuda/runtime.h"

#if AFT_WITH_CUDA && !AFT_CUDA_EMULATE
#include <cuda_runtime.h>
#endif

namespace aft::cuda {

#if AFT_WITH_CUDA
namespace {

CachingAllocator& allocator() {
#if AFT_CUDA_EMULATE
  static CachingAllocator a([](size_t n) { return std::malloc(n); }, [](void* p) { std::free(p); },
                            /*cache=*/false);
#else
  static CachingAllocator a(
      [](size_t n) -> void* {
        void* p = nullptr;
        if (cudaMalloc(&p, n) != cudaSuccess) {
          cudaGetLastError();  // clear the error; the allocator retries or reports
          return nullptr;
        }
        return p;
      },
      [](void* p) { cudaFree(p); });
#endif
  return a;
}

}  // namespace

void* allocate(size_t bytes, int device) {
  if (bytes == 0) return nullptr;
  require_device(device, "allocate");
  void* p = allocator().allocate(bytes);
  if (!p) {
    DeviceMemoryStats s = allocator().stats();
    AFT_ERROR("cuda out of memory: asked for {} bytes ({:.1f} MiB); {:.1f} MiB in use by tensors, "
              "{:.1f} MiB reserved on cuda:{}", bytes, bytes / 1048576.0, s.in_use / 1048576.0,
              s.reserved / 1048576.0, device);
  }
  return p;
}

void deallocate(void* p, size_t, int) { allocator().deallocate(p); }

DeviceMemoryStats memory_stats(int) { return allocator().stats(); }
void reset_peak_memory(int) { allocator().reset_peak(); }
void empty_cache() { allocator().release_cached(); }
#endif

}  // namespace aft::cuda
