// tests/cuda/test_cuda_aft_bias.cpp: aft_band_bias on CUDA (cuda/aft_bias.cu) against the CPU
// op, forward and both gradients (and each gradient alone), causal and not, float32 and
// float64; T = 1 and odd T, d' = 1 and odd d', windows 1, 2, small and wider than T. Every sum
// is one thread's, in the CPU's order: float64 agrees to rounding, float32 to a few ulp (fused
// multiply-adds), and in the EMULATE build results are identical under every thread order.
// Skipped (exit 77) without a device.
#include "../helpers.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

namespace {

struct Result {
  Tensor out, du, dv;
};

// out and the gradients of sum(out · w) on `dev`; nu / nv: which inputs require grad.
Result run(const Tensor& u, const Tensor& v, const Tensor& w, int64_t W, bool causal, Device dev, bool nu, bool nv) {
  Tensor ud = u.to(dev).detach().requires_grad_(nu), vd = v.to(dev).detach().requires_grad_(nv);
  Tensor out = aft_band_bias(ud, vd, W, causal);
  REQUIRE(out.device() == dev);
  sum(mul(out, w.to(dev))).backward();
  Result r{out.detach().cpu(), Tensor(), Tensor()};
  if (nu) {
    REQUIRE(ud.grad().device() == dev);
    r.du = ud.grad().cpu();
  }
  if (nv) {
    REQUIRE(vd.grad().device() == dev);
    r.dv = vd.grad().cpu();
  }
  return r;
}

}  // namespace

TEST_CASE("aft_band_bias on CUDA matches the CPU") {
  uint64_t seed = 1;
  for (DType dt : {kFloat32, kFloat64}) {
    const double tol = dt == kFloat32 ? 1e-5 : 1e-13;
    for (bool causal : {false, true})
      for (int64_t T : {1, 9, 33})
        for (int64_t C : {1, 4, 17})
          for (int64_t W : {1, 2, 5, 40}) {
            CAPTURE(dtype_name(dt));
            CAPTURE(causal);
            CAPTURE(T);
            CAPTURE(C);
            CAPTURE(W);
            Generator g(seed++);
            Tensor u = randn({T, C}, dt, &g), v = randn({T, C}, dt, &g);
            Tensor w = randn({T, causal ? W : 2 * W - 1}, dt, &g);
            const Result want = run(u, v, w, W, causal, kCPU, true, true);
            Result first;
            for_each_order([&] {
              const Result got = run(u, v, w, W, causal, Device::cuda(), true, true);
              check_close(got.out, want.out, tol, tol, "forward");
              check_close(got.du, want.du, tol, tol, "du");
              check_close(got.dv, want.dv, tol, tol, "dv");
              if (!first.out.defined()) {
                first = got;
              } else {
                check_close(got.out, first.out, 0, 0, "forward across orders");
                check_close(got.du, first.du, 0, 0, "du across orders");
                check_close(got.dv, first.dv, 0, 0, "dv across orders");
              }
            });
          }
  }
}

TEST_CASE("aft_band_bias on CUDA: one gradient at a time, strided inputs") {
  Generator g(77);
  const int64_t T = 17, C = 5, W = 4;
  Tensor u = randn({C, T}, kFloat64, &g).t(), v = randn({T, C}, kFloat64, &g);  // u a transposed view
  Tensor w = randn({T, 2 * W - 1}, kFloat64, &g);
  const Result want = run(u, v, w, W, false, kCPU, true, true);
  const Result du_only = run(u, v, w, W, false, Device::cuda(), true, false);
  check_close(du_only.out, want.out, 1e-13, 1e-13, "forward");
  check_close(du_only.du, want.du, 1e-13, 1e-13, "du alone");
  CHECK_FALSE(du_only.dv.defined());
  const Result dv_only = run(u, v, w, W, false, Device::cuda(), false, true);
  check_close(dv_only.dv, want.dv, 1e-13, 1e-13, "dv alone");
  check_error([&] { aft_band_bias(u.cuda(), v, W, false); }, "different devices");
}
