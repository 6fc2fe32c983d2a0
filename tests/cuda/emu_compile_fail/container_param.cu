// expect: they must be trivially copyable
// A container passed by value: its heap pointer means nothing on the GPU.
#include <vector>

#include "cuda/launch.h"

__global__ void k(std::vector<float> v, float* y) { y[threadIdx.x] = v[threadIdx.x]; }

void launch_it(const std::vector<float>& v, float* y) { AFT_LAUNCH(k, 1, 32, 0, v, y); }
