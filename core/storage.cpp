// core/storage.cpp: CPU allocation with statistics; device and pinned memory through the hooks
// that the CUDA backend registers (core/storage.h).
//
// Host blocks of 1 MiB and more go through a caching allocator (core/caching_allocator.h):
// glibc serves them with fresh mmap()s, and the page faults of first touch then cost more than
// the arithmetic of an elementwise op (measured: an add over 16M floats ran at 3.6-6.3 GB/s into
// fresh memory against 11-26 GB/s into reused memory). Smaller blocks go straight to malloc,
// which recycles them well. Under AddressSanitizer nothing is cached, so it sees every misuse.
#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/caching_allocator.h"
#include "core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define AFT_CPU_CACHE 0
#else
#define AFT_CPU_CACHE 1
#endif

namespace aft {
namespace {

constexpr size_t kCachedFrom = size_t{1} << 20;

// 64-byte aligned, exactly n bytes (so AddressSanitizer flags a read one past the end).
void* aligned_bytes(size_t n) {
  void* p = nullptr;
  return posix_memalign(&p, 64, n) == 0 ? p : nullptr;
}

CachingAllocator& cpu_cache() {
  static CachingAllocator a(aligned_bytes, [](void* p) { std::free(p); }, AFT_CPU_CACHE != 0);
  return a;
}

void* host_alloc(size_t nbytes) {
  if (nbytes >= kCachedFrom) return cpu_cache().allocate(nbytes);
  return aligned_bytes(nbytes);
}

void host_free(void* p, size_t nbytes) {
  if (nbytes >= kCachedFrom) cpu_cache().deallocate(p);
  else std::free(p);
}

DeviceMemoryHooks g_device;  // written once while the library loads, read-only afterwards

const DeviceMemoryHooks& device_hooks() {
  AFT_ASSERT(g_device.allocate != nullptr);  // cuda/runtime.cpp registers them in every build
  return g_device;
}

std::atomic<int64_t> g_in_use{0}, g_peak{0}, g_blocks{0};

void note_alloc(int64_t n) {
  int64_t now = g_in_use.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  g_blocks.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  void* p = nullptr;
  if (device.is_cpu()) {
    if (nbytes > 0) {
      p = host_alloc(nbytes);
      AFT_CHECK(p != nullptr, "out of host memory: asked for {} bytes with {} bytes in use", nbytes,
                g_in_use.load());
      note_alloc(static_cast<int64_t>(nbytes));
    }
  } else {
    p = device_hooks().allocate(nbytes, device.index);
  }
  return std::shared_ptr<Storage>(new Storage(p, nbytes, device));
}

std::shared_ptr<Storage> Storage::allocate_pinned(size_t nbytes) {
  void* p = device_hooks().alloc_pinned(nbytes);
  if (p) note_alloc(static_cast<int64_t>(nbytes));
  return std::shared_ptr<Storage>(new Storage(p, nbytes, kCPU, /*pinned=*/true));
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    if (data_) {
      if (pinned_) device_hooks().free_pinned(data_);
      else host_free(data_, nbytes_);
      g_in_use.fetch_sub(static_cast<int64_t>(nbytes_), std::memory_order_relaxed);
      g_blocks.fetch_sub(1, std::memory_order_relaxed);
    }
  } else {
    device_hooks().deallocate(data_, nbytes_, device_.index);
  }
}

void set_device_memory_hooks(const DeviceMemoryHooks& hooks) { g_device = hooks; }

MemoryStats cpu_memory_stats() {
  return {g_in_use.load(), g_peak.load(), g_blocks.load()};
}

void reset_cpu_peak_memory() { g_peak.store(g_in_use.load()); }

void cpu_empty_cache() { cpu_cache().release_cached(); }

}  // namespace aft
