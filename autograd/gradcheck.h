// autograd/gradcheck.h: compares the tape's gradients with central finite differences.
//
// For f: inputs -> one tensor, gradcheck projects the output on a fixed random tensor R
// (L = sum(f(x) * R), so every output element matters and a wrong element cannot hide), runs
// L.backward(), and compares each input's gradient, element by element, with
// (L(x + eps) - L(x - eps)) / (2 eps). Inputs are CPU tensors; those with requires_grad
// (float64) are checked, the others (e.g. int64 indices) are passed through unchanged. The result names the worst element.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace aft {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;  // over all checked elements
  double max_rel_error = 0;
  std::string worst;  // "input 1, element 7: analytic 0.12 vs numeric 0.125"
};

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-4;  // an element passes when |a - n| <= atol + rtol * |n|
};

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, GradcheckOptions opts = {});

}  // namespace aft
