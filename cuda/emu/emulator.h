// cuda/emu/emulator.h: the SIMT emulator, the kernel side. With AFT_CUDA=EMULATE the .cu files
// are compiled by the host C++ compiler and cuda/compat.h includes this header instead of the
// CUDA runtime: it defines, for plain C++, what a kernel sees on the GPU
//   - the qualifiers (__global__, __device__, __host__, __forceinline__, __launch_bounds__: empty
//     or their g++ equivalent) and the vector types (cuda/emu/types.h);
//   - threadIdx, blockIdx, blockDim, gridDim and warpSize, read from the emulated thread that is
//     running;
//   - shared memory through AFT_SHARED / AFT_DYN_SHARED: one exact-size heap block per block,
//     filled with 0xFF bytes (NaN as float or double, -1 as an integer) when the block starts;
//   - __syncthreads() (and _count/_and/_or) and the warp collectives (__shfl*_sync, __ballot_sync,
//     __any_sync, __all_sync, __syncwarp, __reduce_*_sync): each suspends the calling thread
//     until the threads it waits for have arrived, then checks that they all agree;
//   - math intrinsics, atomics and bit tricks (cuda/emu/intrinsics.h);
//   - emu::launch, which cuda/launch.h's AFT_LAUNCH calls, and the Options that choose in which
//     order threads and blocks run.
// What CUDA has and the emulator cannot model fails to compile with a message (__shared__,
// __constant__, __managed__) or is simply not declared (texture objects, cooperative groups,
// half precision, inline PTX must be guarded by `#if !AFT_CUDA_EMULATE`).
//
// How it runs (cuda/emu/scheduler.cpp): each block runs on one OS thread; each of its GPU
// threads is a fiber (cuda/emu/fiber.h) that runs until it finishes or reaches a barrier or warp
// collective, in the order Options say. docs/cuda-emulator.md is the user's guide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cuda/emu/intrinsics.h"
#include "cuda/emu/types.h"

// ---------------------------------------------------------------- qualifiers

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
// __restrict__ is a g++ keyword already; `#pragma unroll` is ignored (the build passes
// -Wno-unknown-pragmas for .cu files).

// Declarations the emulator cannot give the GPU's meaning: a compile error that says what to do.
// (_Pragma takes one string literal, hence the long lines.)
// clang-format off
#define __shared__ _Pragma("GCC error \"__shared__ is not supported by the SIMT emulator (AFT_CUDA=EMULATE): declare shared memory with AFT_SHARED(type, name, count) or AFT_DYN_SHARED(type, name)\"")
#define __constant__ _Pragma("GCC error \"__constant__ memory is not supported by the SIMT emulator (AFT_CUDA=EMULATE): pass the values as kernel arguments or in a global-memory buffer\"")
#define __managed__ _Pragma("GCC error \"__managed__ memory is not supported by the SIMT emulator (AFT_CUDA=EMULATE)\"")
// clang-format on

// ---------------------------------------------------------------- the emulator's interface

namespace aft::cuda::emu {

// In which order the threads of a block run between two barriers, or the blocks of a grid.
enum class Order : unsigned char {
  Forward,  // ascending linear thread id (x fastest, then y, then z) / block id
  Reverse,  // descending
  Shuffle,  // a permutation drawn from `seed` (a new one after every barrier)
};

struct Options {
  Order thread_order = Order::Forward;
  Order block_order = Order::Forward;
  uint64_t seed = 1;      // of the Shuffle orders
  bool parallel = true;   // run blocks on aft's thread pool (core/parallel.h); false: in order,
                          // one after another, on the calling thread (reproducible atomics)
  bool assembly_fibers = true;  // the x86-64 context switch; false: glibc's swapcontext
  size_t stack_bytes = 0;       // per GPU thread; 0: 64 KiB (256 KiB under AddressSanitizer)
  bool racecheck = false;       // check races (needs a build with -DAFT_EMU_RACECHECK=ON, where
                                // it is on unless AFT_EMU_RACECHECK=0)
};

// Whether this build can check races (configured with -DAFT_EMU_RACECHECK=ON).
bool has_racecheck();

// The options launches use now. Initially from the environment:
//   AFT_EMU_ORDER=<threads>[/<blocks>]  each forward, reverse, shuffle or shuffle:<seed>
//                                       (blocks default to the threads' order), e.g. "reverse",
//                                       "shuffle:7", "forward/reverse"
//   AFT_EMU_SERIAL=1                    blocks one after another on the calling thread
//   AFT_EMU_FIBERS=asm|ucontext         the context switch
//   AFT_EMU_STACK_KB=<n>                stack of each GPU thread
//   AFT_EMU_RACECHECK=0|1               the race checker (default: on where it is built)
// A malformed value is reported as aft::Error at the first launch.
Options options();
void set_options(const Options& o);

// Sets options for the lifetime of the object (e.g. one launch in a test), then restores them.
class ScopedOptions {
 public:
  explicit ScopedOptions(const Options& o) : saved_(options()) { set_options(o); }
  ~ScopedOptions() { set_options(saved_); }
  ScopedOptions(const ScopedOptions&) = delete;
  ScopedOptions& operator=(const ScopedOptions&) = delete;

 private:
  Options saved_;
};

// Parses AFT_EMU_ORDER's syntax into `o` (throws aft::Error on a malformed text), and back.
Options parse_order(std::string_view text, Options o = {});
std::string describe_order(const Options& o);

// The orders a test should run a kernel under to expose missing barriers: forward, reverse
// and one shuffle, each with the other fields of `base`.
std::vector<Options> standard_orders(Options base = options());

// Counters since the start (or reset_stats()), summed over all OS threads.
struct Stats {
  uint64_t launches = 0, blocks = 0, threads = 0;
  uint64_t switches = 0;      // fiber context switches (into or out of a GPU thread)
  uint64_t barriers = 0;      // completed __syncthreads, counted once per block
  uint64_t collectives = 0;   // completed warp collectives, once per group of lanes
  uint64_t stacks_mapped = 0; // fiber stacks ever created (they are pooled and reused)
};
Stats stats();
void reset_stats();

namespace detail {

// What threadIdx & co. read: the running GPU thread (set by the scheduler on every switch).
struct ThreadView {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
// (constinit and initial-exec: a threadIdx read is one load, with no TLS wrapper call)
extern thread_local constinit const ThreadView* t_view __attribute__((tls_model("initial-exec")));
[[noreturn]] void outside_kernel(const char* what);
inline const ThreadView& view(const char* what) {
  const ThreadView* v = t_view;
  if (!v) [[unlikely]] outside_kernel(what);
  return *v;
}
inline int warp_size() { return 32; }  // not constexpr: CUDA's warpSize is not a constant

// ---- barriers and warp collectives (cuda/emu/scheduler.cpp)
enum class BarrierKind : unsigned char { Sync, Count, And, Or };
int barrier(BarrierKind kind, int pred, const std::source_location& where);

enum class Collective : unsigned char {
  ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, SyncWarp,
  ReduceAdd, ReduceMinS, ReduceMinU, ReduceMaxS, ReduceMaxU, ReduceAnd, ReduceOr, ReduceXor,
};
// Contributes `value` (its low `bytes` bytes) and `arg` (source lane, delta or lane mask) and
// returns this lane's result once every live lane named in `mask` has arrived.
uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int bytes, int arg,
                         int width, const std::source_location& where);
unsigned active_mask();

template <class T>
T shuffle(Collective kind, unsigned mask, T var, int arg, int width, const std::source_location& where) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  uint64_t bits = 0;
  __builtin_memcpy(&bits, &var, sizeof(T));
  bits = warp_collective(kind, mask, bits, sizeof(T), arg, width, where);
  T out;
  __builtin_memcpy(&out, &bits, sizeof(T));
  return out;
}

// ---- shared memory of the running block
// Static: one block of `bytes` per declaration (`key`) per block; dynamic: the launch's size.
void* static_shared(const void* key, size_t bytes, size_t align, const char* name);
void* dynamic_shared(size_t align);
template <class T>
void* static_shared_of(const void* key, size_t count, const char* name) {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>,
                "AFT_SHARED: shared memory holds trivial types only (no constructors), as in CUDA");
  return static_shared(key, sizeof(T) * count, alignof(T), name);
}

// ---- launches (cuda/emu/launch.cpp)
void run_grid(const char* name, dim3 grid, dim3 block, size_t shmem, void (*body)(const void*),
              const void* closure, size_t closure_bytes);

}  // namespace detail

// Runs kernel(args...) on a grid of blocks: cuda/launch.h's AFT_LAUNCH in EMULATE builds.
// The arguments are copied once here; every GPU thread passes its own copy to the kernel, as
// the GPU gives each thread the launch's parameters.
template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t shmem, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  static_assert((!std::is_reference_v<P> && ...),
                "kernel parameters must be values: a reference to host memory is invalid on the GPU");
  static_assert((std::is_trivially_copyable_v<P> && ...),
                "kernel parameters are copied bytewise to the GPU: they must be trivially copyable "
                "(pass pointers to device memory and plain structs, not containers)");
  struct Closure {
    void (*kernel)(P...);
    std::tuple<P...> params;
  };
  static_assert(sizeof(std::tuple<P...>) <= 32764, "kernel parameters exceed CUDA's 32764 bytes");
  Closure c{kernel, std::tuple<P...>(static_cast<P>(args)...)};
  auto body = [](const void* p) {
    const Closure& cl = *static_cast<const Closure*>(p);
    std::apply(cl.kernel, cl.params);
  };
  detail::run_grid(name, grid, block, shmem, +body, &c, sizeof(c));
}

}  // namespace aft::cuda::emu

// ---------------------------------------------------------------- what a kernel reads

#define threadIdx (::aft::cuda::emu::detail::view("threadIdx").thread_idx)
#define blockIdx (::aft::cuda::emu::detail::view("blockIdx").block_idx)
#define blockDim (::aft::cuda::emu::detail::view("blockDim").block_dim)
#define gridDim (::aft::cuda::emu::detail::view("gridDim").grid_dim)
#define warpSize (::aft::cuda::emu::detail::warp_size())

// Static shared memory: AFT_SHARED(float, tile, 256) declares `float tile[256]`, one array per
// block (a 2-D tile: `using Row = float[33]; AFT_SHARED(Row, tile, 32);`). The local static
// only gives the declaration an address that tells it apart from the kernel's others.
#define AFT_SHARED(type, name, count)                                                  \
  static_assert((count) > 0, "AFT_SHARED: the element count must be positive");        \
  static constexpr char aft_shared_key_##name = 0;                                     \
  type(&name)[count] = *static_cast<type(*)[count]>(                                   \
      ::aft::cuda::emu::detail::static_shared_of<type>(&aft_shared_key_##name, (count), #name))

// Dynamic shared memory (the launch's shared_bytes): AFT_DYN_SHARED(float, buf) declares
// `float* buf`; every such declaration of a kernel points to the same bytes, as on the GPU.
#define AFT_DYN_SHARED(type, name) \
  type* name = static_cast<type*>(::aft::cuda::emu::detail::dynamic_shared(alignof(type)))

// ---------------------------------------------------------------- barriers

using aft_emu_where_t = std::source_location;  // (keeps the signatures below on one line)

inline void __syncthreads(const aft_emu_where_t& w = aft_emu_where_t::current()) {
  ::aft::cuda::emu::detail::barrier(::aft::cuda::emu::detail::BarrierKind::Sync, 0, w);
}
// The barrier, returning how many threads passed a nonzero predicate / whether all / any did.
inline int __syncthreads_count(int pred, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  return ::aft::cuda::emu::detail::barrier(::aft::cuda::emu::detail::BarrierKind::Count, pred, w);
}
inline int __syncthreads_and(int pred, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  return ::aft::cuda::emu::detail::barrier(::aft::cuda::emu::detail::BarrierKind::And, pred, w);
}
inline int __syncthreads_or(int pred, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  return ::aft::cuda::emu::detail::barrier(::aft::cuda::emu::detail::BarrierKind::Or, pred, w);
}

// ---------------------------------------------------------------- warp collectives
//
// Lanes are the 32 consecutive linear thread ids of a warp. Every lane named in `mask` that has
// not exited must make the same call with the same mask; the calling lane must be in the mask.
// A shuffle that reads a lane which has exited or is outside the mask gets 0xFF bytes (NaN).

inline void __syncwarp(unsigned mask = 0xffffffffu, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  ::aft::cuda::emu::detail::warp_collective(::aft::cuda::emu::detail::Collective::SyncWarp, mask, 0, 4, 0, 32, w);
}
inline unsigned __ballot_sync(unsigned mask, int pred, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  return static_cast<unsigned>(::aft::cuda::emu::detail::warp_collective(
      ::aft::cuda::emu::detail::Collective::Ballot, mask, pred != 0, 4, 0, 32, w));
}
inline int __any_sync(unsigned mask, int pred, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  return static_cast<int>(::aft::cuda::emu::detail::warp_collective(
      ::aft::cuda::emu::detail::Collective::Any, mask, pred != 0, 4, 0, 32, w));
}
inline int __all_sync(unsigned mask, int pred, const aft_emu_where_t& w = aft_emu_where_t::current()) {
  return static_cast<int>(::aft::cuda::emu::detail::warp_collective(
      ::aft::cuda::emu::detail::Collective::All, mask, pred != 0, 4, 0, 32, w));
}
// The lanes of the warp that have not exited (the GPU gives the lanes converged at the call,
// which the emulator cannot know: use it only where all live lanes take part).
inline unsigned __activemask() { return ::aft::cuda::emu::detail::active_mask(); }

// __shfl_sync(mask, v, src, width): v of lane src (mod width) of this lane's width-segment;
// _up: of lane - delta, _down: of lane + delta, _xor: of lane ^ lane_mask; a source outside the
// segment returns the lane's own v (as the GPU does). CUDA's overloads: 4- and 8-byte scalars.
#define AFT_EMU_SHUFFLES(T)                                                                          \
  inline T __shfl_sync(unsigned mask, T var, int src, int width = 32,                                \
                       const aft_emu_where_t& w = aft_emu_where_t::current()) {                      \
    return ::aft::cuda::emu::detail::shuffle<T>(::aft::cuda::emu::detail::Collective::ShflIdx, mask,  \
                                                var, src, width, w);                                 \
  }                                                                                                  \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,                      \
                          const aft_emu_where_t& w = aft_emu_where_t::current()) {                   \
    return ::aft::cuda::emu::detail::shuffle<T>(::aft::cuda::emu::detail::Collective::ShflUp, mask,   \
                                                var, static_cast<int>(delta), width, w);             \
  }                                                                                                  \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,                    \
                            const aft_emu_where_t& w = aft_emu_where_t::current()) {                 \
    return ::aft::cuda::emu::detail::shuffle<T>(::aft::cuda::emu::detail::Collective::ShflDown,      \
                                                mask, var, static_cast<int>(delta), width, w);       \
  }                                                                                                  \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,                      \
                           const aft_emu_where_t& w = aft_emu_where_t::current()) {                  \
    return ::aft::cuda::emu::detail::shuffle<T>(::aft::cuda::emu::detail::Collective::ShflXor, mask,  \
                                                var, lane_mask, width, w);                           \
  }
AFT_EMU_SHUFFLES(int)
AFT_EMU_SHUFFLES(unsigned)
AFT_EMU_SHUFFLES(long)
AFT_EMU_SHUFFLES(unsigned long)
AFT_EMU_SHUFFLES(long long)
AFT_EMU_SHUFFLES(unsigned long long)
AFT_EMU_SHUFFLES(float)
AFT_EMU_SHUFFLES(double)
#undef AFT_EMU_SHUFFLES

// Warp reductions of sm_80+ (over the live lanes of the mask).
#define AFT_EMU_REDUCE(name, T, kind)                                                              \
  inline T name(unsigned mask, T value, const aft_emu_where_t& w = aft_emu_where_t::current()) {  \
    return static_cast<T>(::aft::cuda::emu::detail::warp_collective(                               \
        ::aft::cuda::emu::detail::Collective::kind, mask, static_cast<uint32_t>(value), 4, 0, 32, w)); \
  }
AFT_EMU_REDUCE(__reduce_add_sync, unsigned, ReduceAdd)
AFT_EMU_REDUCE(__reduce_add_sync, int, ReduceAdd)
AFT_EMU_REDUCE(__reduce_min_sync, unsigned, ReduceMinU)
AFT_EMU_REDUCE(__reduce_min_sync, int, ReduceMinS)
AFT_EMU_REDUCE(__reduce_max_sync, unsigned, ReduceMaxU)
AFT_EMU_REDUCE(__reduce_max_sync, int, ReduceMaxS)
AFT_EMU_REDUCE(__reduce_and_sync, unsigned, ReduceAnd)
AFT_EMU_REDUCE(__reduce_or_sync, unsigned, ReduceOr)
AFT_EMU_REDUCE(__reduce_xor_sync, unsigned, ReduceXor)
#undef AFT_EMU_REDUCE

// ---------------------------------------------------------------- streams

// Launches and copies are synchronous in the emulator; the type exists so signatures compile.
using cudaStream_t = struct aft_emu_stream*;
