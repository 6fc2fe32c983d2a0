// expect: __shared__ is not supported by the SIMT emulator.*AFT_DYN_SHARED
// Dynamic shared memory declared the CUDA way instead of AFT_DYN_SHARED.
#include "cuda/compat.h"

__global__ void k(float* y) {
  extern __shared__ float buf[];
  buf[threadIdx.x] = 1.0f;
  y[threadIdx.x] = buf[threadIdx.x];
}
