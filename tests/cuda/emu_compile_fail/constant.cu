// expect: __constant__ memory is not supported by the SIMT emulator
// Constant memory has no emulation: pass the values as kernel arguments.
#include "cuda/compat.h"

__constant__ float coefficients[4];

__global__ void k(float* y) { y[threadIdx.x] = coefficients[threadIdx.x % 4]; }
