// core/storage.h: a block of memory on one device, shared by every view of it.
//
// A Storage owns `nbytes` bytes on the CPU (64-byte aligned, for vector loads) or on a CUDA
// device. It also carries the version counter that autograd uses to detect a saved tensor
// modified in place: every in-place op bumps it.
//
// core/ is the ground floor and includes nothing above it, so device memory comes through
// hooks that the CUDA backend registers when the library loads (cuda/runtime.cpp, in every
// build: with AFT_CUDA=OFF its allocate() says that CUDA was not built).
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
  // Pinned host memory (DeviceMemoryHooks::alloc_pinned): a CPU storage that copies to a CUDA device
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

// How core reaches device memory without including cuda/ (set once, by cuda/runtime.cpp).
// allocate(0, ·) and alloc_pinned(0) return nullptr; failures throw aft::Error.
struct DeviceMemoryHooks {
  void* (*allocate)(size_t bytes, int device) = nullptr;
  void (*deallocate)(void* p, size_t bytes, int device) = nullptr;
  void* (*alloc_pinned)(size_t bytes) = nullptr;
  void (*free_pinned)(void* p) = nullptr;
};
void set_device_memory_hooks(const DeviceMemoryHooks& hooks);

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
