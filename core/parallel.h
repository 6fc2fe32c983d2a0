// core/parallel.h: the thread pool the CPU kernels share.
//
// parallel_for splits [begin, end) into one contiguous chunk per thread (a static partition,
// so a given thread count always makes the same chunks and the results are reproducible) and
// runs them on the pool, the calling thread taking the first chunk. Ranges smaller than `grain`
// and calls made from inside a parallel region run inline on the caller.
//
// The thread count is AFT_NUM_THREADS from the environment, else the number of hardware
// threads; set_num_threads() changes it at run time.
#pragma once

#include <cstdint>
#include <functional>

namespace aft {

int num_threads();
void set_num_threads(int n);

// fn(chunk_begin, chunk_end) for disjoint chunks covering [begin, end).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// True while the calling thread runs a chunk of a parallel_for.
bool in_parallel_region();

}  // namespace aft
