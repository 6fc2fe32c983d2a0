// core/storage.h: a block of memory on one device, shared by every view of it.
//
// A Storage owns `nbytes` bytes on the CPU (64-byte aligned, for vector loads) or on a CUDA
// device (through the CUDA allocator of cuda/). It also carries the version counter that
// autograd uses to detect a saved tensor modified in place: every in-place op bumps it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace aft {

class Storage {
 public:
  // Allocates nbytes (uninitialised) on device; throws aft::Error when that is impossible.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
  // Pinned host memory (cuda::host_alloc_pinned): a CPU storage that copies to a CUDA device
  // can read without staging, and asynchronously (ops/copy.cpp).
  static std::shared_ptr<Storage> allocate_pinned(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Storage(void* data, size_t nbytes, Device device, bool pinned = false)
      : data_(data), nbytes_(nbytes), device_(device), pinned_(pinned) {}
  void* data_;
  size_t nbytes_;
  Device device_;
  bool pinned_;
  std::atomic<uint64_t> version_{0};
};

// Host memory held by CPU tensors (bytes). `peak` is the high-water mark since the last reset.
struct MemoryStats {
  int64_t in_use = 0;
  int64_t peak = 0;
  int64_t allocations = 0;  // number of live blocks
};
MemoryStats cpu_memory_stats();
void reset_cpu_peak_memory();
// Returns the cached free host blocks (1 MiB and larger) to the system.
void cpu_empty_cache();

}  // namespace aft
