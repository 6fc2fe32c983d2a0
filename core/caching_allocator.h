// core/caching_allocator.h: the caching allocator behind CUDA tensors and large CPU tensors.
//
// cudaMalloc and cudaFree are slow (cudaFree synchronises the device), large host blocks come
// from fresh mmap()s that page-fault on every first touch, and a training step allocates and
// frees the same sizes every iteration. So freed blocks are kept in free lists,
// one per size class, and handed out again: after the first step, a step allocates nothing
// from the driver.
//
// Size classes: requests are rounded up to a multiple of 512 bytes up to 1 MiB, and to a
// multiple of 2 MiB above, so a block of a class serves any request that rounds to it. A
// request only reuses a block of its own class (no splitting: simple, and waste is bounded by
// the rounding). When the backend runs out of memory, every cached block is released and the
// request retried once; if it still fails, the caller gets an error that says how much was
// asked for, how much is in use and how much is reserved.
//
// All work happens on one stream, so a block freed by one kernel's tensor can be reused by the
// next launch without synchronisation: the stream orders them.
//
// With cache = false (the SIMT emulator) blocks have their exact size and go back to the
// backend at once, so AddressSanitizer sees every overrun and every use after free; the
// statistics are kept all the same.
//
// Plain C++ with the raw allocation functions passed in, so tests exercise it with host memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace aft {

struct AllocatorStats {
  int64_t in_use = 0;        // bytes of live tensors (rounded to their class)
  int64_t peak_in_use = 0;   // high-water mark of in_use since the last reset
  int64_t reserved = 0;      // bytes obtained from the backend (in use + cached)
  int64_t backend_allocs = 0;  // number of backend allocations so far
};

class CachingAllocator {
 public:
  // raw_alloc returns nullptr when out of memory; raw_free releases a block.
  using RawAlloc = std::function<void*(size_t)>;
  using RawFree = std::function<void(void*)>;

  CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, bool cache = true)
      : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)), cache_(cache) {}
  ~CachingAllocator() { release_cached(); }

  static size_t round_size(size_t bytes) {
    constexpr size_t kSmall = 512, kLarge = size_t{2} << 20, kSmallLimit = size_t{1} << 20;
    size_t unit = bytes <= kSmallLimit ? kSmall : kLarge;
    return (bytes + unit - 1) / unit * unit;
  }

  // Returns nullptr (never throws) when even a retry after releasing the cache fails.
  void* allocate(size_t bytes) {
    if (bytes == 0) return nullptr;
    size_t size = cache_ ? round_size(bytes) : bytes;
    std::lock_guard lock(mu_);
    void* p = nullptr;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    } else {
      p = raw_alloc_(size);
      if (!p) {
        release_cached_locked();
        p = raw_alloc_(size);
      }
      if (!p) return nullptr;
      stats_.reserved += static_cast<int64_t>(size);
      ++stats_.backend_allocs;
    }
    live_[p] = size;
    stats_.in_use += static_cast<int64_t>(size);
    if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
    return p;
  }

  void deallocate(void* p) {
    if (!p) return;
    std::lock_guard lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours (cannot happen through Storage)
    size_t size = it->second;
    live_.erase(it);
    stats_.in_use -= static_cast<int64_t>(size);
    if (cache_) {
      free_[size].push_back(p);
    } else {
      raw_free_(p);
      stats_.reserved -= static_cast<int64_t>(size);
    }
  }

  // Gives every cached (free) block back to the backend.
  void release_cached() {
    std::lock_guard lock(mu_);
    release_cached_locked();
  }

  AllocatorStats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mu_);
    stats_.peak_in_use = stats_.in_use;
  }

 private:
  void release_cached_locked() {
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) {
        raw_free_(p);
        stats_.reserved -= static_cast<int64_t>(size);
      }
    }
    free_.clear();
  }

  RawAlloc raw_alloc_;
  RawFree raw_free_;
  bool cache_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, size_t> live_;     // block -> its size class
  AllocatorStats stats_;
};

}  // namespace aft
