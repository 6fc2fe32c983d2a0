// tests/test_caching_allocator.cpp: the caching allocator's logic (CUDA and large CPU blocks):
// size classes, reuse without new backend allocations, statistics, release, out of memory.
#include "helpers.h"

using namespace aft;

TEST_CASE("size classes") {
  CHECK(CachingAllocator::round_size(1) == 512);
  CHECK(CachingAllocator::round_size(512) == 512);
  CHECK(CachingAllocator::round_size(513) == 1024);
  CHECK(CachingAllocator::round_size(1 << 20) == (1 << 20));
  CHECK(CachingAllocator::round_size((1 << 20) + 1) == (2 << 20));
  CHECK(CachingAllocator::round_size(5 << 20) == (6 << 20));
}

TEST_CASE("freed blocks are reused; statistics follow") {
  int64_t backend_bytes = 0;
  int frees = 0;
  CachingAllocator a([&](size_t n) { backend_bytes += static_cast<int64_t>(n); return std::malloc(n); },
                     [&](void* p) { ++frees; std::free(p); });
  void* p = a.allocate(1000);
  void* q = a.allocate(3000);
  CHECK(a.stats().in_use == 1024 + 3072);
  CHECK(a.stats().backend_allocs == 2);
  a.deallocate(p);
  CHECK(a.stats().in_use == 3072);
  CHECK(a.stats().reserved == 1024 + 3072);
  void* r = a.allocate(700);  // same class as 1000: the cached block comes back
  CHECK(r == p);
  CHECK(a.stats().backend_allocs == 2);
  CHECK(a.stats().peak_in_use == 1024 + 3072);
  // A training-loop pattern allocates nothing new after the first iteration.
  for (int step = 0; step < 10; ++step) {
    void* x = a.allocate(5 << 20);
    void* y = a.allocate(100);
    a.deallocate(y);
    a.deallocate(x);
  }
  CHECK(a.stats().backend_allocs == 4);
  a.deallocate(q);
  a.deallocate(r);
  CHECK(a.stats().in_use == 0);
  a.release_cached();
  CHECK(a.stats().reserved == 0);
  CHECK(frees == 4);
}

TEST_CASE("out of memory: the cache is released and the request retried once") {
  int64_t capacity = 8 << 20, used = 0;
  std::map<void*, size_t> sizes;
  CachingAllocator a(
      [&](size_t n) -> void* {
        if (used + static_cast<int64_t>(n) > capacity) return nullptr;
        used += static_cast<int64_t>(n);
        void* p = std::malloc(n);
        sizes[p] = n;
        return p;
      },
      [&](void* p) { used -= static_cast<int64_t>(sizes[p]); sizes.erase(p); std::free(p); });
  void* p = a.allocate(6 << 20);
  a.deallocate(p);                     // cached: 6 MiB reserved, 0 in use
  void* q = a.allocate(4 << 20);       // does not fit beside the cache: release, retry
  CHECK(q != nullptr);
  CHECK(a.stats().reserved == (4 << 20));
  CHECK(a.allocate(6 << 20) == nullptr);  // cannot fit at all: nullptr, caller reports
  a.deallocate(q);
}

TEST_CASE("without caching, blocks are exact and returned at once (emulator mode)") {
  int live = 0;
  CachingAllocator a([&](size_t n) { ++live; return std::malloc(n); },
                     [&](void* p) { --live; std::free(p); }, /*cache=*/false);
  void* p = a.allocate(1000);
  CHECK(a.stats().in_use == 1000);
  a.deallocate(p);
  CHECK(live == 0);
  CHECK(a.stats().reserved == 0);
}
