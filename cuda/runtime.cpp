// cuda/runtime.cpp: device discovery, memory and copies for the three build modes.
//
// AFT_WITH_CUDA (real or emulated) and AFT_CUDA_EMULATE are set by CMake. In the real build the
// CUDA runtime API is called and every call is checked; in the emulated build memory is host
// memory from the emulator, and copies are memcpy.
#include "cuda/runtime.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/storage.h"

#if AFT_WITH_CUDA && !AFT_CUDA_EMULATE
#include <cuda_runtime.h>
#endif

namespace aft::cuda {

#if !AFT_WITH_CUDA  // ------------------------------------------------------------ no CUDA

const char* build_mode() { return "off"; }
bool is_built() { return false; }
bool is_emulated() { return false; }
int device_count() { return 0; }
bool is_available() { return false; }
std::string unavailable_reason() { return "aft was built without CUDA (AFT_CUDA=OFF)"; }
std::string device_name(int) { return "none"; }
void require_device(int index, const char* op) {
  AFT_ERROR("{}: cuda:{} requested, but aft was built without CUDA (configure with AFT_CUDA=ON "
            "or EMULATE)", op, index);
}
void* allocate(size_t bytes, int device) {
  if (bytes == 0) return nullptr;
  require_device(device, "allocate");
  return nullptr;
}
void deallocate(void*, size_t, int) {}
DeviceMemoryStats memory_stats(int) { return {}; }
void reset_peak_memory(int) {}
void empty_cache() {}
void copy_h2d(void*, const void*, size_t) { require_device(0, "copy to cuda"); }
void copy_d2h(void*, const void*, size_t) { require_device(0, "copy from cuda"); }
void copy_d2d(void*, const void*, size_t) { require_device(0, "copy on cuda"); }
void synchronize() {}
void copy_h2d_async(void*, const void*, size_t) { require_device(0, "copy to cuda"); }

#else  // ------------------------------------------------------------ real or emulated CUDA

void raise_error(const char* message) { AFT_ERROR("{}", message); }

void require_device(int index, const char* op) {
  int n = device_count();
  if (n == 0) AFT_ERROR("{}: no CUDA device: {}", op, unavailable_reason());
  AFT_CHECK(index >= 0 && index < n, "{}: cuda:{} requested, but there are {} device(s)", op, index, n);
}

#if AFT_CUDA_EMULATE
// The emulator has one device. Its memory is host memory; the allocator (cuda/allocator.cpp)
// tracks it separately from CPU tensors.
const char* build_mode() { return "emulate"; }
bool is_built() { return true; }
bool is_emulated() { return true; }
int device_count() { return 1; }
bool is_available() { return true; }
std::string unavailable_reason() { return ""; }
std::string device_name(int) { return "SIMT emulator"; }
void copy_h2d(void* dst, const void* src, size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
void copy_d2h(void* dst, const void* src, size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
// cudaMemcpyAsync between overlapping ranges is undefined on a GPU: refused here, so that the
// emulator catches what a GPU would silently get wrong.
void copy_d2d(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if (d < s + bytes && s < d + bytes)
    AFT_ERROR("copy on cuda: source and destination of {} bytes overlap (undefined on a GPU)", bytes);
  std::memcpy(dst, src, bytes);
}
void copy_h2d_async(void* dst, const void* src, size_t bytes) { copy_h2d(dst, src, bytes); }
void synchronize() {}
#else
namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) AFT_ERROR("{}: CUDA error {}: {}", what, static_cast<int>(e), cudaGetErrorString(e));
}
struct Discovery {
  int count = 0;
  std::string reason;
  Discovery() {
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      count = 0;
      reason = std::string(cudaGetErrorString(e)) + " (is an NVIDIA driver installed and a GPU visible?)";
      cudaGetLastError();  // clear the sticky error
    } else if (count == 0) {
      reason = "the CUDA runtime sees no GPU";
    }
  }
};
const Discovery& discovery() {
  static Discovery d;
  return d;
}
}  // namespace

const char* build_mode() { return "cuda"; }
bool is_built() { return true; }
bool is_emulated() { return false; }
int device_count() { return discovery().count; }
bool is_available() { return device_count() > 0; }
std::string unavailable_reason() { return discovery().reason; }
std::string device_name(int index) {
  require_device(index, "device_name");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  return prop.name;
}
void copy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to cuda");
}
void copy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy from cuda");
}
void copy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0), "copy on cuda");
}
void copy_h2d_async(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, 0), "copy to cuda (async)");
}
void* host_alloc_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  require_device(0, "pin_memory");
  void* p = nullptr;
  cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the error
    AFT_ERROR("pin_memory: cudaHostAlloc of {} bytes ({:.1f} MiB) failed: {}", bytes, bytes / 1048576.0,
              cudaGetErrorString(e));
  }
  return p;
}
void host_free_pinned(void* p) {
  if (!p) return;
  cudaDeviceSynchronize();  // a queued copy may still read the block (errors: reported elsewhere)
  cudaFreeHost(p);
}
void synchronize() { check(cudaDeviceSynchronize(), "synchronize"); }
void check_launch(const char* kernel_name) {
  static const bool sync_check = [] {
    const char* e = std::getenv("AFT_CUDA_SYNC_CHECK");
    return e && *e && *e != '0';
  }();
  check(cudaGetLastError(), kernel_name);
  if (sync_check) check(cudaDeviceSynchronize(), kernel_name);
}
#endif

#endif

#if !AFT_WITH_CUDA || AFT_CUDA_EMULATE
// No page-locking to do: 64-byte aligned host memory, as CPU tensors get.
void* host_alloc_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes) != 0) AFT_ERROR("pin_memory: out of host memory asking for {} bytes", bytes);
  return p;
}
void host_free_pinned(void* p) { std::free(p); }
#endif

// Device and pinned memory for core/storage.cpp, which cannot include this layer.
namespace {
[[maybe_unused]] const bool g_hooks_registered = [] {
  set_device_memory_hooks({.allocate = allocate,
                           .deallocate = deallocate,
                           .alloc_pinned = host_alloc_pinned,
                           .free_pinned = host_free_pinned});
  return true;
}();
}  // namespace

}  // namespace aft::cuda
