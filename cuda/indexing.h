// cuda/indexing.h: the launchers of cuda/indexing.cu (index_select, gather, embedding and
// their backward), called by ops/shape_ops.cpp.
#pragma once

#include <cstdint>

#include "cuda/desc.h"

namespace aft::cuda {

// err: one int64 on the device holding index.numel(), lowered to the first position whose value
// is not in [0, n).
void index_check(const TensorDesc& index, int64_t n, const TensorDesc& err);
// out = x indexed along dim (full_index: index has out's shape, as gather; else a 1-d index).
void index_read(const TensorDesc& x, int dim, const TensorDesc& index, bool full_index, const TensorDesc& out);
// dx += g scattered back along dim (the backward of index_read).
void index_scatter_add(const TensorDesc& g, int dim, const TensorDesc& index, bool full_index,
                       const TensorDesc& dx);

}  // namespace aft::cuda
