// tests/cases/matmul.cpp: op cases of matmul (2-d, batched with broadcasting, 1-d operands,
// transposed views).
#include "../op_cases.h"

using namespace aft;
using namespace aft::test;

namespace {
Tensor mm(const In& x) { return matmul(x[0], x[1]); }
}  // namespace

AFT_OP_CASES(matmul) {
  // K = 33 sums make float32 differ from float64 by ~1e-6 relative; 1e-4 is ample.
  add_case({.name = "matmul/2d", .shapes = {{5, 33}, {33, 7}}, .fn = mm});
  add_case({.name = "matmul/batched", .shapes = {{2, 3, 4}, {2, 4, 5}}, .fn = mm});
  add_case({.name = "matmul/broadcast_weight", .shapes = {{2, 3, 4}, {4, 5}}, .fn = mm});
  add_case({.name = "matmul/broadcast_batch", .shapes = {{2, 1, 3, 4}, {3, 4, 2}}, .fn = mm});
  add_case({.name = "matmul/vector_matrix", .shapes = {{4}, {2, 4, 3}}, .fn = mm});
  add_case({.name = "matmul/matrix_vector", .shapes = {{3, 4}, {4}}, .fn = mm});
  add_case({.name = "matmul/dot", .shapes = {{6}, {6}}, .fn = mm});
  add_case({.name = "matmul/transposed",
            .shapes = {{4, 3}, {5, 4}},
            .fn = [](const In& x) { return matmul(x[0].t(), x[1].t()); }});
}
