// cuda/launch.h: the one way kernels are launched, in both build modes.
//
//   AFT_LAUNCH(kernel, grid, block, shared_bytes, args...);
//
// Real CUDA: kernel<<<grid, block, shared_bytes, stream>>>(args...) followed by a check of the
// launch (and, with AFT_CUDA_SYNC_CHECK=1 in the environment, a synchronise so a fault is
// reported at the launch that caused it). EMULATE: the emulator runs the grid on the CPU.
// Arguments are converted to the kernel's parameter types first, so both modes see the same
// values. An empty grid is not launched.
#pragma once

#include "cuda/compat.h"

namespace aft::cuda {

// Throws aft::Error naming the kernel if the last launch failed (implemented in cuda/runtime).
void check_launch(const char* kernel_name);
// Throws aft::Error with this message (for the rare checks a launcher makes itself).
[[noreturn]] void raise_error(const char* message);

template <class... P, class... A>
inline void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t shmem,
                   A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "AFT_LAUNCH: wrong number of kernel arguments");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
#if AFT_CUDA_EMULATE
  emu::launch(name, kernel, grid, block, shmem, static_cast<P>(args)...);
#else
  kernel<<<grid, block, shmem>>>(static_cast<P>(args)...);
  check_launch(name);
#endif
}

// Blocks needed to cover n items with `per_block` items each.
inline unsigned blocks_for(int64_t n, int64_t per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace aft::cuda

#define AFT_LAUNCH(kernel, grid, block, shmem, ...) \
  ::aft::cuda::launch(#kernel, kernel, grid, block, shmem, __VA_ARGS__)
