// tests/cuda/test_op_parity.cpp: every registered op case (tests/cases/) with `.cuda = true`
// runs on the CUDA device (a GPU, or the SIMT emulator in the EMULATE build) and is compared
// with the same case on the CPU: forward, and the gradient of every input. float32 and
// float64, fresh random inputs. Skipped (exit 77) when no CUDA device is usable.
//
// In the EMULATE build every case runs once per thread order of the emulator (forward, reverse,
// shuffled): a kernel with a missing barrier then gives a wrong answer in at least one order.
#include "../helpers.h"
#include "../op_cases.h"


using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

TEST_CASE("every op case: CUDA matches CPU, forward and backward") {
  int ran = 0;
  for_each_order([&] {
    for (const OpCase& c : op_cases()) {
      if (!c.cuda) continue;
      for (DType dt : {kFloat32, kFloat64}) {
        CAPTURE(c.name);
        CAPTURE(dtype_name(dt));
        uint64_t seed = 100 + static_cast<uint64_t>(ran);
        In cpu_in = make_inputs(c, dt, kCPU, seed, c.gradcheck);
        In dev_in = make_inputs(c, dt, Device::cuda(), seed, c.gradcheck);
        Tensor yc = c.fn(cpu_in), yd = c.fn(dev_in);
        REQUIRE(yd.is_cuda());
        double rtol = dt == kFloat32 ? c.f32_rtol : 1e-10,
               atol = dt == kFloat32 ? c.f32_atol : 1e-12;
        check_close(yd.cpu(), yc, rtol, atol, (c.name + " forward").c_str());
        if (c.gradcheck && yc.requires_grad()) {
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
        ++ran;
      }
    }
  });
  MESSAGE("op cases run on CUDA: ", ran);
  CHECK(ran > 0);
}
