// core/storage.cpp: CPU allocation with statistics; CUDA allocation is delegated to cuda/.
#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"
#include "cuda/runtime.h"

namespace aft {
namespace {

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
      size_t rounded = (nbytes + 63) / 64 * 64;
      p = std::aligned_alloc(64, rounded);
      AFT_CHECK(p != nullptr, "out of host memory: asked for {} bytes with {} bytes in use", nbytes,
                g_in_use.load());
      note_alloc(static_cast<int64_t>(nbytes));
    }
  } else {
    p = cuda::allocate(nbytes, device.index);
  }
  return std::shared_ptr<Storage>(new Storage(p, nbytes, device));
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    if (data_) {
      std::free(data_);
      g_in_use.fetch_sub(static_cast<int64_t>(nbytes_), std::memory_order_relaxed);
      g_blocks.fetch_sub(1, std::memory_order_relaxed);
    }
  } else {
    cuda::deallocate(data_, nbytes_, device_.index);
  }
}

MemoryStats cpu_memory_stats() {
  return {g_in_use.load(), g_peak.load(), g_blocks.load()};
}

void reset_cpu_peak_memory() { g_peak.store(g_in_use.load()); }

}  // namespace aft
