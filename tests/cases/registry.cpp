// tests/cases/registry.cpp: storage of the op cases and the default input maker.
#include <set>

#include "../op_cases.h"

namespace aft::test {

std::vector<OpCase>& op_cases() {
  static std::vector<OpCase> cases;
  return cases;
}

void add_case(OpCase c) {
  static std::set<std::string> names;
  AFT_CHECK(names.insert(c.name).second, "op case '{}' registered twice", c.name);
  op_cases().push_back(std::move(c));
}

In make_inputs(const OpCase& c, DType dt, Device dev, uint64_t seed, bool grad) {
  In in;
  if (c.make) {
    in = c.make(dt, dev, seed);
  } else {
    Generator g(seed);
    for (const Shape& s : c.shapes) in.push_back(mul(randn(s, kFloat64, &g), c.scale).to(dt).to(dev));
  }
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = in[i].detach();
    bool skip = std::find(c.no_grad.begin(), c.no_grad.end(), static_cast<int>(i)) != c.no_grad.end();
    if (grad && !skip && is_floating(in[i].dtype())) in[i].requires_grad_();
  }
  return in;
}

}  // namespace aft::test
