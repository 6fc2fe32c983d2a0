// tests/cuda/test_op_parity.cpp: every registered op case (tests/cases/) runs on the CUDA device
// (a GPU, or the SIMT emulator in the EMULATE build) and is compared with the same case on the
// CPU: forward, and the gradient of every input. float32 and float64, fresh random inputs.
// Skipped (exit 77) when no CUDA device is usable.
//
// Whether an op runs on CUDA is the op's own answer, never a flag of the case: an op without a
// kernel throws aft::NotImplementedError, and the case is then counted as unsupported and listed
// by op name at the end (ggml's test-backend-ops asks the backend the same way).
//
// In the EMULATE build every case runs once per thread order of the emulator (forward, reverse,
// shuffled): a kernel with a missing barrier then gives a wrong answer in at least one order.
#include "../helpers.h"
#include <map>
#include <set>

#include "../op_cases.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

// One case on both devices in one dtype; throws NotImplementedError when the op has no kernel.
void run_case(const OpCase& c, DType dt, uint64_t seed) {
  In cpu_in = make_inputs(c, dt, kCPU, seed, c.gradcheck);
  In dev_in = make_inputs(c, dt, Device::cuda(), seed, c.gradcheck);
  Tensor yc = c.fn(cpu_in), yd = c.fn(dev_in);
  REQUIRE(yd.is_cuda());
  double rtol = dt == kFloat32 ? c.f32_rtol : 1e-10, atol = dt == kFloat32 ? c.f32_atol : 1e-12;
  check_close(yd.cpu(), yc, rtol, atol, (c.name + " forward").c_str());
  if (!c.gradcheck || !yc.requires_grad()) return;
  Generator g(seed);
  Tensor proj = randn(yc.shape(), dt, &g);
  sum(mul(yc, proj)).backward();
  sum(mul(yd, proj.cuda())).backward();
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!cpu_in[i].requires_grad() || !cpu_in[i].grad().defined()) continue;
    REQUIRE_MESSAGE(dev_in[i].grad().defined(), c.name, " input ", i);
    CHECK(dev_in[i].grad().is_cuda());
    check_close(dev_in[i].grad().cpu(), cpu_in[i].grad(), rtol, atol,
                (c.name + " gradient of input " + std::to_string(i)).c_str());
  }
}

TEST_CASE("every op case: CUDA matches CPU, forward and backward") {
  int ran = 0;
  std::map<std::string, std::set<std::string>> unsupported;  // op -> cases
  for_each_order([&] {
    for (const OpCase& c : op_cases()) {
      for (DType dt : {kFloat32, kFloat64}) {
        CAPTURE(c.name);
        CAPTURE(dtype_name(dt));
        try {
          run_case(c, dt, 100 + static_cast<uint64_t>(ran));
          ++ran;
        } catch (const NotImplementedError& e) {
          unsupported[e.op()].insert(c.name);
        }
      }
    }
  });
  MESSAGE("op cases run on CUDA (case x dtype x emulator order): ", ran, " of ", op_cases().size(),
          " cases registered");
  for (const auto& [op, cases] : unsupported) {
    std::string names;
    for (const std::string& n : cases) names += (names.empty() ? "" : ", ") + n;
    MESSAGE("unsupported on CUDA: ", op, " (", cases.size(), " cases: ", names, ")");
  }
  CHECK(ran > 0);
}
