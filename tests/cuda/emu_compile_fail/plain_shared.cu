// expect: __shared__ is not supported by the SIMT emulator.*AFT_SHARED
// A plain __shared__ array: in EMULATE builds it must be AFT_SHARED (cuda/compat.h).
#include "cuda/compat.h"

__global__ void k(float* y) {
  __shared__ float s[32];
  s[threadIdx.x] = 1.0f;
  y[threadIdx.x] = s[threadIdx.x];
}
