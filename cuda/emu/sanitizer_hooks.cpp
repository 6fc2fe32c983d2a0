// cuda/emu/sanitizer_hooks.cpp: the functions that compiler instrumentation of the .cu files
// calls, implemented by the emulator instead of the sanitizer runtimes, so that what they find
// is an aft::Error naming the kernel, block and GPU thread (cuda/emu/checks.h):
//   - __ubsan_handle_type_mismatch_v1, UBSan's alignment check (EMULATE builds compile the .cu
//     files with -fsanitize=alignment): a misaligned load or store, the GPU's "misaligned
//     address" fault. In AddressSanitizer builds libubsan provides it and aborts with its own
//     report; the death callback below then names the GPU thread.
//   - the __tsan_* hooks of GCC's -fsanitize=thread (builds with -DAFT_EMU_RACECHECK=ON), linked
//     without libtsan: every load and store of a kernel reaches Checks::access, atomics are done
//     here (seq_cst: stronger than the GPU's relaxed, which changes no single-block outcome)
//     and recorded as atomic.
// Outside a GPU thread (host code of a .cu file, a kernel's parameters, the emulator's own
// records, a thread's stack) the hooks do nothing but the access itself.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "cuda/emu/checks.h"

#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef AFT_EMU_RACECHECK
#define AFT_EMU_RACECHECK 0
#endif

using aft::cuda::emu::detail::AccessKind;
using aft::cuda::emu::detail::Checks;

// ---------------------------------------------------------------- alignment (UBSan's ABI)

#if !defined(__SANITIZE_ADDRESS__)
namespace {
struct UbsanLocation {
  const char* file;
  uint32_t line, column;
};
struct UbsanType {
  uint16_t kind, info;
  char name[1];  // with quotes: 'float4'
};
struct UbsanTypeMismatch {
  UbsanLocation loc;
  const UbsanType* type;
  unsigned char log_alignment, check_kind;
};
const char* check_kind_name(unsigned k) {
  static const char* names[] = {"load of", "store to", "reference binding to", "member access within",
                                "member call on", "constructor call on"};
  return k < 6 ? names[k] : "access to";
}
}  // namespace

extern "C" void __ubsan_handle_type_mismatch_v1(UbsanTypeMismatch* d, uintptr_t ptr) {
  uintptr_t align = uintptr_t(1) << d->log_alignment;
  if (ptr == 0 || ptr % align == 0) return;  // only the alignment check is compiled in
  const char* file = d->loc.file;
  for (const char* p = file; *p; ++p)
    if (*p == '/') file = p + 1;
  std::string what = fmt::format(
      "misaligned address {:#x}: {} {} at {}:{}:{}, which needs {}-byte alignment (a GPU stops "
      "the kernel with \"misaligned address\"; the emulator's CPU would have read or written it)",
      ptr, check_kind_name(d->check_kind), d->type->name, file, d->loc.line, d->loc.column, align);
  if (Checks* c = Checks::current()) c->stop(fmt::format("{}: {}", c->describe_thread(c->current_thread()), what));
  std::fprintf(stderr, "cuda emulator: host code of a .cu file: %s\n", what.c_str());
  std::abort();
}
extern "C" void __ubsan_handle_type_mismatch_v1_abort(UbsanTypeMismatch* d, uintptr_t ptr) {
  __ubsan_handle_type_mismatch_v1(d, ptr);
}

#else
// AddressSanitizer and UBSan report and abort; this says which GPU thread was running.
namespace {
void name_gpu_thread() {
  Checks* c = Checks::current();
  if (!c || !c->launch()) return;
  const ::uint3 b = c->block_idx();
  std::fprintf(stderr, "cuda emulator: the error above is in kernel %s, block (%u, %u, %u), %s "
               "[thread order %s]\n", c->launch()->name, b.x, b.y, b.z,
               c->describe_thread(c->current_thread()).c_str(),
               aft::cuda::emu::describe_order(c->launch()->opts).c_str());
}
// GCC links libasan and libubsan, each with its own copy of the death callback: set both.
[[maybe_unused]] const bool g_registered = [] {
  __sanitizer_set_death_callback(&name_gpu_thread);
  if (void* ubsan = dlopen("libubsan.so.1", RTLD_NOW | RTLD_NOLOAD)) {
    using Set = void (*)(void (*)());
    if (auto set = reinterpret_cast<Set>(dlsym(ubsan, "__sanitizer_set_death_callback"))) set(&name_gpu_thread);
  }
  return true;
}();
}  // namespace
#endif

// ---------------------------------------------------------------- races (GCC's TSan ABI)

#if AFT_EMU_RACECHECK
namespace {
inline void on_access(const volatile void* p, size_t n, AccessKind k, const void* pc) {
  Checks* c = Checks::current();
  if (c && c->racecheck()) c->access(reinterpret_cast<uintptr_t>(p), n, k, pc);
}
}  // namespace

#define AFT_PC __builtin_return_address(0)
extern "C" {
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
void __tsan_read_range(void* p, unsigned long n) { on_access(p, n, aft::cuda::emu::detail::kRead, AFT_PC); }
void __tsan_write_range(void* p, unsigned long n) { on_access(p, n, aft::cuda::emu::detail::kWrite, AFT_PC); }
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

#define AFT_TSAN_PLAIN(n)                                                                                   \
  void __tsan_read##n(void* p) { on_access(p, n, aft::cuda::emu::detail::kRead, AFT_PC); }                  \
  void __tsan_write##n(void* p) { on_access(p, n, aft::cuda::emu::detail::kWrite, AFT_PC); }                \
  void __tsan_unaligned_read##n(void* p) { on_access(p, n, aft::cuda::emu::detail::kRead, AFT_PC); }        \
  void __tsan_unaligned_write##n(void* p) { on_access(p, n, aft::cuda::emu::detail::kWrite, AFT_PC); }      \
  void __tsan_volatile_read##n(void* p) { on_access(p, n, aft::cuda::emu::detail::kRead, AFT_PC); }         \
  void __tsan_volatile_write##n(void* p) { on_access(p, n, aft::cuda::emu::detail::kWrite, AFT_PC); }
AFT_TSAN_PLAIN(1)
AFT_TSAN_PLAIN(2)
AFT_TSAN_PLAIN(4)
AFT_TSAN_PLAIN(8)
AFT_TSAN_PLAIN(16)
#undef AFT_TSAN_PLAIN

// __tsan_atomicN_<op>: the operation, then the record (a load reads; everything else writes).
#define AFT_TSAN_RMW(n, T, op, builtin)                                                     \
  T __tsan_atomic##n##_##op(volatile T* p, T v, int) {                                      \
    on_access(p, sizeof(T), aft::cuda::emu::detail::kAtomicWrite, AFT_PC);                  \
    return builtin(p, v, __ATOMIC_SEQ_CST);                                                 \
  }
#define AFT_TSAN_ATOMICS(n, T)                                                                      \
  T __tsan_atomic##n##_load(const volatile T* p, int) {                                             \
    on_access(p, sizeof(T), aft::cuda::emu::detail::kAtomicRead, AFT_PC);                           \
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                    \
  }                                                                                                 \
  void __tsan_atomic##n##_store(volatile T* p, T v, int) {                                          \
    on_access(p, sizeof(T), aft::cuda::emu::detail::kAtomicWrite, AFT_PC);                          \
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);                                                       \
  }                                                                                                 \
  AFT_TSAN_RMW(n, T, exchange, __atomic_exchange_n)                                                 \
  AFT_TSAN_RMW(n, T, fetch_add, __atomic_fetch_add)                                                 \
  AFT_TSAN_RMW(n, T, fetch_sub, __atomic_fetch_sub)                                                 \
  AFT_TSAN_RMW(n, T, fetch_and, __atomic_fetch_and)                                                 \
  AFT_TSAN_RMW(n, T, fetch_or, __atomic_fetch_or)                                                   \
  AFT_TSAN_RMW(n, T, fetch_xor, __atomic_fetch_xor)                                                 \
  AFT_TSAN_RMW(n, T, fetch_nand, __atomic_fetch_nand)                                               \
  int __tsan_atomic##n##_compare_exchange_strong(volatile T* p, T* expected, T desired, int, int) { \
    on_access(p, sizeof(T), aft::cuda::emu::detail::kAtomicWrite, AFT_PC);                          \
    return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST,               \
                                       __ATOMIC_SEQ_CST);                                           \
  }                                                                                                 \
  int __tsan_atomic##n##_compare_exchange_weak(volatile T* p, T* expected, T desired, int, int) {   \
    on_access(p, sizeof(T), aft::cuda::emu::detail::kAtomicWrite, AFT_PC);                          \
    return __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_SEQ_CST,                \
                                       __ATOMIC_SEQ_CST);                                           \
  }                                                                                                 \
  T __tsan_atomic##n##_compare_exchange_val(volatile T* p, T expected, T desired, int, int) {       \
    on_access(p, sizeof(T), aft::cuda::emu::detail::kAtomicWrite, AFT_PC);                          \
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);  \
    return expected;                                                                                \
  }
AFT_TSAN_ATOMICS(8, uint8_t)
AFT_TSAN_ATOMICS(16, uint16_t)
AFT_TSAN_ATOMICS(32, uint32_t)
AFT_TSAN_ATOMICS(64, uint64_t)
#undef AFT_TSAN_ATOMICS
#undef AFT_TSAN_RMW
}  // extern "C"
#endif  // AFT_EMU_RACECHECK
