// tests/cuda/test_cuda_basic.cpp: the CUDA device as a tensor home: detection, copies both
// ways (dense, strided, converting), fill, and parity of the first elementwise and reduction
// kernels with the CPU ops, copies between overlapping views, and the 16-byte vectorised
// elementwise path. Skipped (exit 77)
// when no CUDA device is usable.
#include "../helpers.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

TEST_CASE("device detection") {
  CHECK(cuda::is_built());
  CHECK(cuda::device_count() >= 1);
  CHECK(!cuda::device_name(0).empty());
  check_error([] { cuda::require_device(99, "test"); }, "99");
}

TEST_CASE("copies between host and device") {
  Generator g(1);
  Tensor x = randn({37, 5}, kFloat32, &g);
  Tensor d = x.cuda();
  CHECK(d.is_cuda());
  CHECK(d.shape() == x.shape());
  check_close(d.cpu(), x, 0, 0);
  // Strided source on the host, strided views on the device, dtype conversions.
  check_close(x.t().cuda().cpu(), x.t(), 0, 0);
  check_close(d.t().contiguous().cpu(), x.t().contiguous(), 0, 0);
  check_close(d.slice(0, 1, 30, 3).cpu(), x.slice(0, 1, 30, 3), 0, 0);
  check_close(d.to(kFloat64).cpu(), x.to(kFloat64), 0, 0);
  Tensor host = zeros({5, 37});
  host.copy_(d.t());
  check_close(host, x.t(), 0, 0);
  Tensor dz = zeros({2, 3}, Device::cuda());
  dz.copy_(from_vector<float>({1, 2, 3}));  // broadcast from the host
  check_values(dz, {1, 2, 3, 1, 2, 3});
  check_values(full({3}, 2.5, {kFloat64, Device::cuda()}), {2.5, 2.5, 2.5});
  check_values(zeros({4}, {kInt64, Device::cuda()}), {0, 0, 0, 0});
  // An empty tensor and a 0-d tensor.
  CHECK(zeros({0, 3}, Device::cuda()).cpu().numel() == 0);
  CHECK(scalar_tensor(4.0, Device::cuda()).item() == 4.0);
  // Mixing devices is an error, not a silent copy.
  check_error([&] { add(x, d); }, "different devices");
}

TEST_CASE("copy_ between overlapping views reads the whole source first, on both devices") {
  // x[1:] = x[:-1] shifts by one; x.t() = x transposes in place. Without a temporary the GPU's
  // memcpy and copy kernel are undefined (the emulator's device memcpy refuses the overlap).
  for (Device dev : {kCPU, Device::cuda()}) {
    CAPTURE(dev.is_cpu());
    Tensor x = from_vector<float>({0, 1, 2, 3, 4, 5}).to(dev);
    x.narrow(0, 1, 5).copy_(x.narrow(0, 0, 5));
    check_values(x.cpu(), {0, 0, 1, 2, 3, 4});
    Tensor y = from_vector<float>({0, 1, 2, 3, 4, 5}).to(dev);
    y.narrow(0, 0, 5).copy_(y.narrow(0, 1, 5));  // the other direction
    check_values(y.cpu(), {1, 2, 3, 4, 5, 5});
    Tensor m = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8, 9}).reshape({3, 3}).to(dev);
    m.copy_(m.t());
    check_values(m.cpu(), {1, 4, 7, 2, 5, 8, 3, 6, 9});
  }
  // Views of one storage that do not overlap take the direct path.
  Tensor z = from_vector<float>({1, 2, 3, 4}).cuda();
  z.narrow(0, 2, 2).copy_(z.narrow(0, 0, 2));
  check_values(z.cpu(), {1, 2, 1, 2});
}

TEST_CASE("elementwise and reduction kernels match the CPU") {
  for (int64_t n : {1, 255, 256, 257, 1000}) {
    CAPTURE(n);
    Generator g(static_cast<uint64_t>(n));
    Tensor a = randn({n}, kFloat32, &g), b = randn({n}, kFloat32, &g);
    Tensor da = a.cuda(), db = b.cuda();
    check_close(add(da, db).cpu(), add(a, b), 0, 0);
    check_close(exp(da).cpu(), exp(a), 1e-6, 0);
    check_close(sigmoid(da).cpu(), sigmoid(a), 1e-6, 1e-7);
    check_close(sum(da).cpu(), sum(a), 1e-6, 1e-6);
    check_close(amax(da).cpu(), amax(a), 0, 0);
    check_close(where(gt(da, db), da, db).cpu(), maximum(a, b), 0, 0);
  }
  Generator g(9);
  Tensor x = randn({3, 17, 5}, kFloat64, &g), y = randn({17, 1}, kFloat64, &g);
  Tensor dx = x.cuda(), dy = y.cuda();
  check_close(mul(dx, dy).cpu(), mul(x, y), 1e-15, 0);
  check_close(sub(dx.transpose(0, 2), 1.5).cpu(), sub(x.transpose(0, 2), 1.5), 1e-15, 0);
  check_close(sum(dx, {0, 2}, true).cpu(), sum(x, {0, 2}, true), 1e-12, 1e-12);
  MaxResult m = max(dx, 1), mc = max(x, 1);
  check_close(m.values.cpu(), mc.values, 0, 0);
  check_close(m.indices.cpu(), mc.indices, 0, 0);
}

TEST_CASE("gradients flow through device ops and back to the host") {
  Tensor x = leaf({4, 3}, 5);
  Tensor y = sum(mul(exp(x.cuda()), 2.0));
  y.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().is_cpu());
  check_close(x.grad(), mul(exp(x.detach()), 2.0), 1e-12, 1e-12);
}

// Dense float operands whose pointers are 16-byte aligned take the vectorised kernels
// (cuda/elementwise.cu: float4 / double2 per thread, scalar tail for n % 4 or n % 2); a view
// starting one element in is dense but 4 (8) bytes off and takes the strided kernel. Both must
// match the CPU, forward and backward (unary backward from x and from y, binary backward).
TEST_CASE("dense elementwise kernels: vectorised path, tails and misaligned fallback") {
  for_each_order([&] {
    for (DType dt : {kFloat32, kFloat64}) {
      const double rtol = dt == kFloat32 ? 1e-5 : 1e-13, atol = dt == kFloat32 ? 1e-6 : 1e-14;
      for (int64_t n : {1, 3, 4, 5, 1023, 4096 + 3}) {
        for (int64_t start : {0, 1}) {
          if (start >= n) continue;
          CAPTURE(dtype_name(dt));
          CAPTURE(n);
          CAPTURE(start);
          Generator g(static_cast<uint64_t>(n));
          Tensor a = randn({n}, dt, &g), b = randn({n}, dt, &g), proj = randn({n - start}, dt, &g);
          auto run = [&](const Tensor& a0, const Tensor& b0, const Tensor& pr) {
            Tensor x = a0.narrow(0, start, n - start).detach().requires_grad_();
            Tensor y = b0.narrow(0, start, n - start).detach().requires_grad_();
            Tensor outs[] = {tanh(x), gelu(x, GeluApprox::Tanh), pow(x, 3.0), mul(x, y),
                             div(x, add(exp(y), 1.0))};
            Tensor total = sum(mul(outs[0], pr));
            for (int k = 1; k < 5; ++k) total = add(total, sum(mul(outs[k], pr)));
            total.backward();
            return std::vector<Tensor>{outs[0], outs[1], outs[2], outs[3], outs[4], x.grad(),
                                       y.grad()};
          };
          std::vector<Tensor> c = run(a, b, proj), d = run(a.cuda(), b.cuda(), proj.cuda());
          for (size_t k = 0; k < c.size(); ++k) {
            CAPTURE(k);
            CHECK(d[k].is_cuda());
            check_close(d[k].cpu(), c[k], rtol, atol);
          }
        }
      }
    }
  });
}
