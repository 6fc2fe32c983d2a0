// cuda/reduce.h: the launcher of cuda/reduce.cu (sum, max, argmax over any set of dims),
// called by ops/reduce.cpp.
#pragma once

#include "cuda/desc.h"

namespace aft::cuda {

// out_keep (x's shape with reduced dims of extent 1) = the reduction of x over the dims d with
// reduced[d]; kind 0 sum, 1 max (ops/reduce.cpp's Kind). argmax_keep (int64, may be null)
// receives the index along the reduced dim of the first maximum.
void reduce(int kind, const TensorDesc& x, const bool* reduced, const TensorDesc& out_keep,
            const TensorDesc* argmax_keep);

}  // namespace aft::cuda
