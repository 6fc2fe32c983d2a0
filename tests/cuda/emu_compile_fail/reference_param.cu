// expect: kernel parameters must be values
// A kernel taking a reference would read host memory on the GPU.
#include "cuda/launch.h"

__global__ void k(int& n, float* y) { y[threadIdx.x] = static_cast<float>(n); }

void launch_it(int& n, float* y) { AFT_LAUNCH(k, 1, 32, 0, n, y); }
