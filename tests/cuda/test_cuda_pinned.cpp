// tests/cuda/test_cuda_pinned.cpp: pinned host tensors (empty_pinned, pin_memory) and the
// queued host-to-device copy from them (ops/copy.cpp, cuda::copy_h2d_async): the data arrives,
// kernels launched after the copy see it, a pinned buffer can be refilled and sent again (copy_
// into it waits for the queued copy), conversions and strided destinations still work. Skipped
// (exit 77) without a device.
#include "../helpers.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

TEST_CASE("pinned host tensors") {
  Tensor p = empty_pinned({3, 4}, kInt64);
  CHECK(p.is_cpu());
  CHECK(p.is_pinned());
  CHECK(p.shape() == Shape{3, 4});
  CHECK(p.dtype() == kInt64);
  CHECK_FALSE(zeros({2}).is_pinned());
  CHECK(empty_pinned({0}).numel() == 0);

  Generator g(3);
  Tensor x = randn({5, 7}, kFloat64, &g);
  Tensor px = x.t().pin_memory();  // a strided source becomes a contiguous pinned copy
  CHECK(px.is_pinned());
  CHECK(px.is_contiguous());
  check_close(px, x.t(), 0, 0);
  CHECK(px.pin_memory().is_same(px));  // already pinned: itself
  CHECK_FALSE(px.t().pin_memory().is_same(px));
  // Host ops read pinned tensors like any other.
  check_close(add(px, 1.0), add(x.t(), 1.0), 0, 0);
  check_error([&] { x.cuda().pin_memory(); }, "only host tensors");
}

TEST_CASE("copies from pinned memory to the device") {
  Generator g(5);
  const int64_t B = 4, T = 33;
  Tensor batch = empty_pinned({B, T}, kFloat64);
  Tensor acc = zeros({B, T}, {kFloat64, Device::cuda()});
  Tensor want = zeros({B, T}, kFloat64);
  // A data loader's loop: refill the same pinned buffer, send it, use it on the device.
  for (int step = 0; step < 5; ++step) {
    Tensor src = randn({B, T}, kFloat64, &g);
    batch.copy_(src);  // waits for the previous step's queued copy
    Tensor dev = batch.cuda();
    CHECK(dev.is_cuda());
    acc = add(acc, dev);
    want = add(want, src);
  }
  check_close(acc.cpu(), want, 0, 0);

  // Float data, a conversion on the way (staged through ordinary memory), a strided destination.
  Tensor f = randn({B, T}, kFloat32, &g).pin_memory();
  check_close(f.cuda().cpu(), f, 0, 0);
  check_close(f.to(Device::cuda()).to(kFloat64).cpu(), f.to(kFloat64), 0, 0);
  Tensor dst = zeros({T, B}, Device::cuda());
  dst.t().copy_(f);
  check_close(dst.cpu(), f.t(), 0, 0);
  Tensor wide = zeros({B, T}, {kFloat64, Device::cuda()});
  wide.copy_(f);  // converts float32 -> float64 on the host first
  check_close(wide.cpu(), f.to(kFloat64), 0, 0);
  // Pinned memory counts as host memory in use, and is returned when the tensor dies.
  const int64_t before = cpu_memory_stats().in_use;
  {
    Tensor big = empty_pinned({1 << 16}, kFloat32);
    CHECK(cpu_memory_stats().in_use == before + (int64_t{1} << 18));
  }
  CHECK(cpu_memory_stats().in_use == before);
}
