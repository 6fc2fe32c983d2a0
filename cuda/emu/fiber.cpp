// cuda/emu/fiber.cpp: stacks and context switches of the emulator's fibers (see fiber.h for
// why fibers), with the AddressSanitizer annotations a stack switch needs.
#include "cuda/emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define AFT_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AFT_EMU_ASAN 1
#endif
#endif

#if AFT_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace aft::cuda::emu::detail {

// ---------------------------------------------------------------- stacks

namespace {
size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
}  // namespace

Stack StackPool::get(size_t size) {
  for (size_t i = 0; i < free_.size(); ++i) {
    if (free_[i].size == size) {
      Stack s = free_[i];
      free_[i] = free_.back();
      free_.pop_back();
      return s;
    }
  }
  // A new stack: one guard page below the usable region. The pages are only touched (and so
  // only cost memory) as deep as the kernel's frames reach.
  size_t guard = page_size();
  void* p = mmap(nullptr, size + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  AFT_CHECK(p != MAP_FAILED, "cuda emulator: cannot map a {}-byte fiber stack", size + guard);
  AFT_CHECK(mprotect(p, guard, PROT_NONE) == 0, "cuda emulator: cannot protect a stack guard page");
  ++mapped_;
  return {static_cast<char*>(p) + guard, size};
}

void StackPool::put(Stack s) { free_.push_back(s); }

StackPool::~StackPool() {
  for (const Stack& s : free_) munmap(s.bottom - page_size(), s.size + page_size());
}

void unpoison_stack(const Context& c, bool whole) {
#if AFT_EMU_ASAN
  char* top = c.stack.bottom + c.stack.size;
  char* from = c.stack.bottom;
  auto* sp = static_cast<char*>(c.sp);
  if (!whole && !c.uc && sp > c.stack.bottom && sp < top) from = sp;  // (the ucontext backend
  __asan_unpoison_memory_region(from, static_cast<size_t>(top - from));  // keeps no sp: whole)
#else
  (void)c, (void)whole;
#endif
}

// ---------------------------------------------------------------- x86-64 assembly switch
//
// aft_emu_switch(save_sp, new_sp): pushes the callee-saved registers (rbp rbx r12-r15) on the
// current stack, stores the stack pointer in *save_sp, loads new_sp and pops the same set from
// there. Everything else is caller-saved in the System V ABI, so the compiler has already
// spilled it around the call. The SSE / x87 control words (rounding mode) are not switched:
// like a function call, a fiber shares them with its OS thread, and kernels never change them
// (saving them made a switch several times slower: ldmxcsr and fldcw serialise the pipeline).
//
// A new fiber's stack is laid out so that the first switch "returns" into aft_emu_trampoline
// with r12 = arg and r13 = entry; the trampoline calls entry(arg) with a 16-byte aligned stack.
// Its CFI marks the return address undefined, so unwinders and debuggers stop there.
#if defined(__x86_64__)
extern "C" void aft_emu_switch(void** save_sp, void* new_sp);
extern "C" void aft_emu_trampoline();
asm(R"(
  .pushsection .text
  .p2align 4
  .globl aft_emu_switch
  .hidden aft_emu_switch
  .type aft_emu_switch, @function
aft_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size aft_emu_switch, .-aft_emu_switch

  .p2align 4
  .globl aft_emu_trampoline
  .hidden aft_emu_trampoline
  .type aft_emu_trampoline, @function
aft_emu_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size aft_emu_trampoline, .-aft_emu_trampoline
  .popsection
)");

namespace {
void make_assembly_context(Context& c, char* top_of_stack, void (*entry)(void*), void* arg) {
  // Frame read by the first aft_emu_switch into this fiber, from the saved stack pointer up:
  //   r15  r14  r13=entry  r12=arg  rbx  rbp=0  return address=trampoline  (padding)
  // After `ret` the stack pointer is top - 16, 16-byte aligned, as `call` in the trampoline needs.
  auto top = reinterpret_cast<uintptr_t>(top_of_stack) & ~uintptr_t(15);
  auto* frame = reinterpret_cast<uint64_t*>(top - 72);
  std::memset(frame, 0, 72);
  frame[2] = reinterpret_cast<uint64_t>(entry);  // r13
  frame[3] = reinterpret_cast<uint64_t>(arg);    // r12
  frame[6] = reinterpret_cast<uint64_t>(&aft_emu_trampoline);
  c.sp = frame;
}
}  // namespace
#endif

FiberBackend default_fiber_backend() {
  return has_assembly_backend() ? FiberBackend::Assembly : FiberBackend::Ucontext;
}

bool has_assembly_backend() {
#if defined(__x86_64__)
  return true;
#else
  return false;
#endif
}

// ---------------------------------------------------------------- ucontext switch

namespace {
// makecontext passes int arguments only: the entry and its argument travel as 32-bit halves.
void ucontext_entry(unsigned e_hi, unsigned e_lo, unsigned a_hi, unsigned a_lo) {
  auto join = [](unsigned hi, unsigned lo) { return (uint64_t(hi) << 32) | lo; };
  auto entry = reinterpret_cast<void (*)(void*)>(join(e_hi, e_lo));
  entry(reinterpret_cast<void*>(join(a_hi, a_lo)));
}
}  // namespace

// Where a fiber's frames start: below the top of its stack by a "colour" of 0 to 63 cache
// lines. Stacks are mapped at a stride that is a multiple of the page size, so without it the
// top frames of all 256 fibers of a block would fall in the same L1 cache set and evict each
// other at every switch (measured: 4x slower barriers).
size_t stack_colour(const Stack& s) {
  return (reinterpret_cast<uintptr_t>(s.bottom) >> 12) % 64 * 64;
}

void make_context(FiberBackend b, Context& c, Stack s, void (*entry)(void*), void* arg) {
  c.stack = s;
  c.asan_fake_stack = nullptr;
  size_t usable = s.size - stack_colour(s);
#if defined(__x86_64__)
  if (b == FiberBackend::Assembly) return make_assembly_context(c, s.bottom + usable, entry, arg);
#endif
  AFT_CHECK(b == FiberBackend::Ucontext, "cuda emulator: the assembly fiber switch exists on x86-64 only");
  if (!c.uc) c.uc = std::make_unique<ucontext_t>();
  AFT_CHECK(getcontext(c.uc.get()) == 0, "cuda emulator: getcontext failed");
  c.uc->uc_stack.ss_sp = s.bottom;
  c.uc->uc_stack.ss_size = usable;
  c.uc->uc_link = nullptr;
  auto e = reinterpret_cast<uint64_t>(entry), a = reinterpret_cast<uint64_t>(arg);
  makecontext(c.uc.get(), reinterpret_cast<void (*)()>(&ucontext_entry), 4, unsigned(e >> 32),
              unsigned(e), unsigned(a >> 32), unsigned(a));
}

// ---------------------------------------------------------------- switching

void switch_context(FiberBackend b, Context& from, Context& to, bool from_dies) {
#if AFT_EMU_ASAN
  // A dying fiber passes nullptr so that ASan frees its fake stack.
  __sanitizer_start_switch_fiber(from_dies ? nullptr : &from.asan_fake_stack, to.stack.bottom,
                                 to.stack.size);
#else
  (void)from_dies;
#endif
#if defined(__x86_64__)
  if (b == FiberBackend::Assembly) {
    aft_emu_switch(&from.sp, to.sp);
  } else
#endif
  {
    if (!from.uc) from.uc = std::make_unique<ucontext_t>();  // the scheduler's, on first use
    swapcontext(from.uc.get(), to.uc.get());
  }
#if AFT_EMU_ASAN
  // Back in `from`. The scheduler only ever switches between itself and one fiber, so the
  // context that resumed us is `to`; if its stack is still unknown (the OS thread's), learn it.
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, &bottom, &size);
  if (!to.stack.bottom) to.stack = {static_cast<char*>(const_cast<void*>(bottom)), size};
#endif
}

void fiber_entered(Context& came_from) {
#if AFT_EMU_ASAN
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  if (!came_from.stack.bottom) came_from.stack = {static_cast<char*>(const_cast<void*>(bottom)), size};
#else
  (void)came_from;
#endif
}

}  // namespace aft::cuda::emu::detail
