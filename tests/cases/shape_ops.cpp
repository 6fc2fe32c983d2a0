// tests/cases/shape_ops.cpp: op cases of cat, stack, split, index_select, gather, embedding.
// Index tensors are made inside fn (they are constants, not differentiated inputs) and moved to
// the device of the float input.
#include "../op_cases.h"

using namespace aft;
using namespace aft::test;

AFT_OP_CASES(shape_ops) {
  add_case({.name = "cat/dim1", .shapes = {{2, 3}, {2, 1}, {2, 4}},
            .fn = [](const In& x) { return cat({x[0], x[1], x[2]}, 1); }});
  add_case({.name = "cat/dim0_3d", .shapes = {{1, 2, 3}, {3, 2, 3}},
            .fn = [](const In& x) { return cat({x[0], x[1]}, 0); }});
  add_case({.name = "stack/dim-1", .shapes = {{2, 3}, {2, 3}},
            .fn = [](const In& x) { return stack({x[0], x[1]}, -1); }});
  add_case({.name = "split/size", .shapes = {{3, 5}},
            .fn = [](const In& x) {
              std::vector<Tensor> p = split(x[0], 2, 1);  // widths 2, 2, 1
              return cat({mul(p[2], 3.0), p[0]}, 1);       // p[1] gets no gradient
            }});
  add_case({.name = "split/sizes", .shapes = {{4, 3}},
            .fn = [](const In& x) {
              std::vector<Tensor> p = split(x[0], std::vector<int64_t>{1, 0, 3}, 0);
              return add(mul(p[2], p[2]), p[0]);
            }});
  add_case({.name = "index_select/dim1_repeated", .shapes = {{3, 4, 2}},
            .fn = [](const In& x) {
              Tensor idx = from_vector<int64_t>({3, 0, 3, 1, 3}).to(x[0].device());
              return index_select(x[0], 1, idx);
            }});
  add_case({.name = "gather/dim-1", .shapes = {{3, 5}},
            .fn = [](const In& x) {
              Tensor idx = from_vector<int64_t>({4, 4, 0, 1, 2, 2, 3, 0, 0}, {3, 3}).to(x[0].device());
              return gather(x[0], -1, idx);
            }});
  add_case({.name = "gather/dim0_smaller", .shapes = {{4, 3, 2}},
            .fn = [](const In& x) {
              Tensor idx = from_vector<int64_t>({3, 0, 1, 1, 2, 3, 0, 0}, {2, 2, 2}).to(x[0].device());
              return gather(x[0], 0, idx);
            }});
  add_case({.name = "embedding/repeated", .shapes = {{6, 4}},
            .fn = [](const In& x) {
              Tensor idx = from_vector<int64_t>({5, 1, 5, 0, 5, 1}, {2, 3}).to(x[0].device());
              return embedding(x[0], idx);
            }});
}
