// tests/cases/elementwise.cpp: op cases of the unary and binary elementwise ops.
#include "../op_cases.h"

using namespace aft;
using namespace aft::test;

namespace {
// Inputs bounded away from 0 (log, sqrt, div, pow need positive or nonzero values).
In positive(const Shape& s, DType dt, Device dev, uint64_t seed) {
  Generator g(seed);
  return {add(rand(s, kFloat64, &g), 0.5).to(dt).to(dev)};
}
}  // namespace

AFT_OP_CASES(unary) {
  add_case({.name = "neg", .shapes = {{3, 4}}, .fn = [](const In& x) { return neg(x[0]); }});
  add_case({.name = "exp", .shapes = {{3, 4}}, .fn = [](const In& x) { return exp(x[0]); }});
  add_case({.name = "log", .fn = [](const In& x) { return log(x[0]); },
            .make = [](DType dt, Device d, uint64_t s) { return positive({3, 4}, dt, d, s); }});
}
