// tests/cuda/test_cuda_basic.cpp: the CUDA device as a tensor home: detection, copies both
// ways (dense, strided, converting), fill, and parity of the first elementwise and reduction
// kernels with the CPU ops. Skipped (exit 77) when no CUDA device is usable.
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
