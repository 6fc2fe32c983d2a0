// tests/cases/nn_ops.cpp: op cases of softmax, log_softmax, layer_norm, cross_entropy, dropout
// and sigmoid_gate. Targets are made inside fn; dropout uses a fresh fixed Generator on every
// call so the mask is the same for every evaluation, dtype and device.
#include "../op_cases.h"

using namespace aft;
using namespace aft::test;

AFT_OP_CASES(nn_ops) {
  add_case({.name = "softmax/dim-1", .shapes = {{3, 5}}, .fn = [](const In& x) { return softmax(x[0], -1); }});
  add_case({.name = "softmax/dim1_of_3d", .shapes = {{2, 4, 3}},
            .fn = [](const In& x) { return softmax(x[0], 1); }});
  add_case({.name = "log_softmax/dim-1", .shapes = {{3, 5}},
            .fn = [](const In& x) { return log_softmax(x[0], -1); }});
  add_case({.name = "log_softmax/dim0", .shapes = {{4, 3}},
            .fn = [](const In& x) { return log_softmax(x[0], 0); }});
  add_case({.name = "layer_norm/affine", .shapes = {{2, 3, 5}, {5}, {5}},
            .fn = [](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); }});
  add_case({.name = "layer_norm/plain", .shapes = {{4, 6}},
            .fn = [](const In& x) { return layer_norm(x[0], Tensor(), Tensor(), 1e-5); }});
  add_case({.name = "cross_entropy/mean", .shapes = {{5, 4}},
            .fn = [](const In& x) {
              Tensor t = from_vector<int64_t>({1, 0, 3, 3, 2}).to(x[0].device());
              return cross_entropy(x[0], t);
            }});
  add_case({.name = "cross_entropy/smooth_ignore_mean", .shapes = {{5, 4}},
            .fn = [](const In& x) {
              Tensor t = from_vector<int64_t>({1, -1, 3, 0, -1}).to(x[0].device());
              return cross_entropy(x[0], t, -1, 0.2, Reduction::Mean);
            }});
  add_case({.name = "cross_entropy/none", .shapes = {{4, 3}},
            .fn = [](const In& x) {
              Tensor t = from_vector<int64_t>({2, 7, 0, 1}).to(x[0].device());
              return cross_entropy(x[0], t, 7, 0.1, Reduction::None);
            }});
  add_case({.name = "cross_entropy/sum", .shapes = {{3, 6}},
            .fn = [](const In& x) {
              Tensor t = from_vector<int64_t>({5, 0, 2}).to(x[0].device());
              return cross_entropy(x[0], t, -100, 0.0, Reduction::Sum);
            }});
  add_case({.name = "dropout/p0.3", .shapes = {{4, 7}},
            .fn = [](const In& x) {
              Generator g(7);
              return dropout(x[0], 0.3, true, &g);
            }});
  add_case({.name = "sigmoid_gate", .shapes = {{2, 3, 4}, {2, 3, 4}},
            .fn = [](const In& x) { return sigmoid_gate(x[0], x[1]); }});
  add_case({.name = "sigmoid_gate/broadcast", .shapes = {{3, 1}, {4}},
            .fn = [](const In& x) { return sigmoid_gate(x[0], x[1]); }});
}
