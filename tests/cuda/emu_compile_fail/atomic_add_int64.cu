// expect: invalid conversion from .*long long int\*.* to .*long long unsigned int\*
// CUDA has no atomicAdd on a signed 64-bit integer (only unsigned long long): neither does the
// emulator, so this cannot pass here and fail under nvcc.
#include "cuda/compat.h"

__global__ void k(long long* counter) { atomicAdd(counter, 1LL); }
