// cuda/emu/checks.h: the emulator's checks of the memory accesses of a block's threads, which
// the compiler reports through instrumentation hooks rather than through the scheduler:
//   - misaligned accesses (cuda/emu/sanitizer_hooks.cpp: .cu files are compiled with
//     -fsanitize=alignment, whose handler the emulator provides);
//   - races (cuda/emu/racecheck.cpp; builds with -DAFT_EMU_RACECHECK=ON compile the .cu files
//     with -fsanitize=thread and the emulator provides the __tsan_* hooks instead of libtsan).
// Internal to cuda/emu/*.cpp.
//
// The hooks are called on the GPU thread's fiber from code the compiler declares nothrow, so
// they never throw: the error is recorded here and the thread stops where it is, as a GPU
// thread stops at a faulting access (it returns to the scheduler for good, which raises the
// error as aft::Error: cuda/emu/scheduler.cpp, BlockRunner::after_step). Its frames are not
// unwound (their destructors do not run), which a kernel's trivial locals do not notice.
//
// The race model (the rules of the CUDA memory model a block can break without atomics):
// between two __syncthreads() of the block (a "phase"), two accesses of the same byte by
// different threads conflict when one is a plain write (a plain write and any other access, a
// plain read and an atomic update of the same word do not: see racecheck.cpp), unless both
// threads are in one warp and a __syncwarp() that both took part in lies between them (tracked
// with a vector clock over the warp's 32 lanes per thread). Shuffles and votes do not order
// memory (the CUDA Programming Guide says so), so only __syncwarp counts. Shared and global
// memory are checked alike; blocks are checked one at a time, so a race between threads of
// different blocks is not seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include "cuda/emu/internal.h"

namespace aft::cuda::emu::detail {

// What an instrumented access does (bits, so that a word can remember which kinds it saw).
enum AccessKind : uint8_t { kRead = 1, kWrite = 2, kAtomicRead = 4, kAtomicWrite = 8 };

class Checks {
 public:
  Checks();
  ~Checks();
  Checks(const Checks&) = delete;
  Checks& operator=(const Checks&) = delete;

  // The scheduler's calls. begin_block: `internal` is memory the emulator's inline code reads
  // on behalf of every thread (the block's thread records), never checked.
  void begin_block(const Launch& launch, uint3 block_idx, unsigned threads, const void* internal,
                   size_t internal_bytes);
  void enter(unsigned thread, const Stack& stack);  // before resuming a fiber
  void leave() { t_checks = nullptr; }              // after it returned to the scheduler
  void new_phase(const std::source_location& barrier);  // every thread passed a __syncthreads
  void sync_warp(unsigned warp, unsigned lanes);        // a __syncwarp of these lanes completed
  void add_shared(const void* p, size_t bytes, const char* name);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  // The hooks' calls, on the running GPU thread.
  [[noreturn]] void stop(std::string what);  // records the error, stops the thread
  bool racecheck() const { return racecheck_; }
  void access(uintptr_t addr, size_t size, AccessKind kind, const void* pc);
  std::string describe_thread(unsigned thread) const;  // "thread 3 (warp 0, lane 3)"
  unsigned current_thread() const { return cur_; }
  const Launch* launch() const { return launch_; }
  uint3 block_idx() const { return block_idx_; }

  // The Checks of the block whose GPU thread runs on this OS thread (null in the scheduler and
  // outside kernels).
  static Checks* current() { return t_checks; }

 private:
  struct Shadow;  // the race checker's state (cuda/emu/racecheck.cpp)
  void word(uintptr_t w, uint8_t bytes, AccessKind kind, const void* pc);
  [[noreturn]] void report_race(uintptr_t addr, AccessKind kind, const void* pc, unsigned other,
                   AccessKind other_kind, const void* other_pc);
  std::string name_address(uintptr_t addr) const;

  static thread_local constinit Checks* t_checks __attribute__((tls_model("initial-exec")));

  const Launch* launch_ = nullptr;
  uint3 block_idx_{};
  unsigned threads_ = 0;
  bool racecheck_ = false;
  std::string error_;
  unsigned cur_ = 0;                        // the running thread (linear id)
  uintptr_t stack_lo_ = 0, stack_bytes_ = 0; // its stack: never checked (private to it)
  struct Range {
    uintptr_t lo = 0, bytes = 0;
  };
  Range ignored_[3];  // the launch's arguments, the thread records, the thread-local view
  struct SharedVar {
    uintptr_t lo, bytes;
    const char* name;
  };
  std::vector<SharedVar> shared_;
  unsigned phase_ = 0;
  std::source_location phase_start_;
  std::unique_ptr<Shadow> shadow_;
};

// True in builds configured with -DAFT_EMU_RACECHECK=ON (the .cu files are instrumented).
bool racecheck_built();

// "file.cu:123" for a code address in a kernel (addr2line on the object that holds it), or
// "libaft.so+0x1234" when it cannot be resolved.
std::string code_location(const void* pc);

}  // namespace aft::cuda::emu::detail
