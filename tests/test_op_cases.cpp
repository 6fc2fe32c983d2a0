// tests/test_op_cases.cpp: every registered op case (tests/cases/) on the CPU:
// gradcheck in float64, and float32 forward and gradients against float64.
#include "helpers.h"
#include "op_cases.h"

using namespace aft;
using namespace aft::test;

TEST_CASE("every op case: gradcheck in float64") {
  REQUIRE(!op_cases().empty());
  for (const OpCase& c : op_cases()) {
    if (!c.gradcheck) continue;
    CAPTURE(c.name);
    In in = make_inputs(c, kFloat64, kCPU, 1, true);
    GradcheckResult r = gradcheck(c.fn, in);
    CHECK_MESSAGE(r.ok, c.name, ": ", r.worst);
  }
}

TEST_CASE("every op case: float32 agrees with float64") {
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    In in64 = make_inputs(c, kFloat64, kCPU, 2, c.gradcheck);
    In in32 = make_inputs(c, kFloat32, kCPU, 2, c.gradcheck);
    Tensor y64 = c.fn(in64), y32 = c.fn(in32);
    check_close(y32, y64, c.f32_rtol, c.f32_atol, (c.name + " forward").c_str());
    if (!c.gradcheck || !y64.requires_grad()) continue;
    Generator g(3);
    Tensor proj = randn(y64.shape(), kFloat64, &g);
    sum(mul(y64, proj)).backward();
    sum(mul(y32, proj.to(kFloat32))).backward();
    for (size_t i = 0; i < in64.size(); ++i) {
      if (!in64[i].requires_grad()) continue;
      REQUIRE_MESSAGE(in32[i].grad().defined() == in64[i].grad().defined(), c.name, " input ", i);
      if (in64[i].grad().defined())
        check_close(in32[i].grad(), in64[i].grad(), c.f32_rtol, c.f32_atol,
                    (c.name + " gradient of input " + std::to_string(i)).c_str());
    }
  }
}
