// expect: no matching function for call to .*__shfl_sync
// CUDA shuffles 4- and 8-byte scalars only; a struct must be shuffled member by member.
#include "cuda/compat.h"

struct Pair {
  float a, b;
};

__global__ void k(Pair* y) {
  Pair p = y[threadIdx.x];
  y[threadIdx.x] = __shfl_sync(0xffffffffu, p, 0);
}
