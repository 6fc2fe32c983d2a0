// cuda/emu/internal.h: what cuda/emu/launch.cpp (grids, options) and cuda/emu/scheduler.cpp
// (one block) share. Not for kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>
#include <vector>

#include "cuda/emu/emulator.h"
#include "cuda/emu/fiber.h"

namespace aft::cuda::emu::detail {

// One launch, as each of its blocks sees it.
struct Launch {
  const char* name = "";
  dim3 grid, block;
  size_t shmem = 0;                    // dynamic shared memory, bytes
  void (*body)(const void*) = nullptr; // runs the kernel for the current thread
  const void* closure = nullptr;
  size_t closure_bytes = 0;
  Options opts;
  FiberBackend backend = FiberBackend::Assembly;
  size_t stack_bytes = 0;
  unsigned threads = 0;                // per block
};

// What a block may use: 48 KiB of shared memory (static + dynamic), as a GPU grants a kernel
// that has not opted in to more with cudaFuncSetAttribute.
constexpr size_t kMaxSharedBytes = 48 * 1024;

// Runs block `block_id` (linear, x fastest) of `launch` on this OS thread; throws aft::Error
// naming the kernel, the block and the threads when it finds a bug (the block is abandoned).
void run_block(const Launch& launch, uint64_t block_id);

// A reproducible permutation of [0, n) in `order` (a Shuffle draws it from `seed`).
void make_order(std::vector<uint32_t>& out, uint32_t n, Order order, uint64_t seed);
uint64_t mix_seed(uint64_t a, uint64_t b);

// Adds a block's counters to the process-wide Stats.
void add_stats(const Stats& s);

// Diagnostics: "file.cu:123" of a call site; "0-15, 17, 20-31" from ascending ids; names.
std::string where_str(const std::source_location& w);
std::string ranges(const std::vector<unsigned>& ids);
const char* collective_name(Collective k);
const char* barrier_name(BarrierKind k);

// Stops the running GPU thread for good where it is (a check found a faulting access): it
// returns to the scheduler, which raises the error the thread's Checks recorded.
[[noreturn]] void stop_thread();

}  // namespace aft::cuda::emu::detail
