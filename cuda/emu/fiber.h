// cuda/emu/fiber.h: user-space threads ("fibers") for the SIMT emulator: stacks, contexts and
// the switch between them. Internal to cuda/emu/*.cpp.
//
// Why fibers and not OS threads. Every emulated GPU thread needs its own stack, because
// __syncthreads() and the warp shuffles may be called at any depth of the kernel's C++ call
// stack and must suspend the thread there. OS threads would give that for free (and
// ThreadSanitizer would see shared-memory races directly), but a barrier then costs a futex
// wake-up and a kernel context switch per thread: measured on this machine (see
// docs/cuda-emulator.md) a 256-thread block with 10 barriers took 7-15 ms with 256 OS threads
// and a std::barrier, 0.15-0.5 ms with these fibers. Fibers also make the order in which
// threads run between barriers an explicit choice of the scheduler (cuda/emu/scheduler.cpp),
// which is how the emulator exposes missing barriers; with OS threads the order is the kernel
// scheduler's whim and a race shows up only sometimes.
//
// Two ways to switch, chosen at run time (Options::fibers, AFT_EMU_FIBERS):
//   Assembly (x86-64): saves the callee-saved registers, the stack pointer and the SSE/x87
//                      control words; a switch is a few nanoseconds.
//   Ucontext:          glibc's makecontext/swapcontext; portable (the default on other CPUs),
//                      but swapcontext makes a sigprocmask system call on every switch.
//
// AddressSanitizer must be told about every switch, or it reports false stack errors (it
// thinks a fiber's frames belong to the OS thread's stack) and aborts with "starting fiber
// switch while in fiber switch": switch_context() and fiber_entered() make those calls.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace aft::cuda::emu::detail {

enum class FiberBackend : unsigned char { Assembly, Ucontext };

// The backend used when Options do not say: Assembly where it exists (x86-64).
FiberBackend default_fiber_backend();
bool has_assembly_backend();

// A fiber's stack: the usable region [bottom, bottom + size); a PROT_NONE guard page lies just
// below `bottom`, so a kernel that overflows its stack faults instead of corrupting memory.
struct Stack {
  char* bottom = nullptr;
  size_t size = 0;
};

// Stacks of one size, reused: a block of 256 threads that never synchronise needs one stack
// (each thread finishes before the next starts); one whose threads all reach a barrier needs
// 256. Each OS thread running blocks owns a pool; stacks are unmapped when it exits.
class StackPool {
 public:
  StackPool() = default;
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  Stack get(size_t size);  // a free stack of exactly `size` bytes (a multiple of the page size)
  void put(Stack s);
  uint64_t mapped() const { return mapped_; }  // stacks created so far

 private:
  std::vector<Stack> free_;
  uint64_t mapped_ = 0;
};

// A suspended execution context: a fiber, or the OS thread's own stack (the scheduler), whose
// Stack stays empty until AddressSanitizer tells fiber_entered() where it is.
struct Context {
  void* sp = nullptr;   // Assembly: the stack pointer saved by the switch
  std::unique_ptr<ucontext_t> uc;  // Ucontext: the saved registers (~1 KB: kept out of line so
                                   // that a block's Thread records stay small and cache-friendly)
  Stack stack;          // the stack this context runs on
  void* asan_fake_stack = nullptr;  // AddressSanitizer's bookkeeping across switches
};

// Prepares `c` to run entry(arg) on stack `s` when first switched to. entry must never return:
// its last act is a switch_context(..., dying = true) away from the fiber.
void make_context(FiberBackend b, Context& c, Stack s, void (*entry)(void*), void* arg);

// Saves the running context into `from` and resumes `to`; returns when something switches
// back to `from`. `from_dies`: `from` will never run again (its stack is about to be reused).
void switch_context(FiberBackend b, Context& from, Context& to, bool from_dies = false);

// Called first thing by a new fiber: finishes the switch for AddressSanitizer and records the
// bounds of the stack it came from (the scheduler's OS thread stack) in `came_from`.
void fiber_entered(Context& came_from);

// Clears AddressSanitizer's poisoning of a dead fiber's stack before the pool reuses it: the
// frames a fiber never returned from (its entry function and last switch, or everything when
// it was unwound by an exception) keep their redzones poisoned. `whole`: the entire stack;
// otherwise only from the last saved stack pointer up, where those frames are.
void unpoison_stack(const Context& c, bool whole);

}  // namespace aft::cuda::emu::detail
