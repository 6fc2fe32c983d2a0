// tests/cuda/test_cuda_matmul.cpp: matmul of CUDA tensors (cuBLAS, cuda/blas.cpp; the CPU GEMM
// on the emulator's memory in the EMULATE build) against the CPU, forward and gradients, in
// float32 and float64: plain, batched, broadcast batches (one strided batch, host loops over
// outer batch dims, the single GEMM of x [B, T, D] @ w [D, N]), transposed and permuted views
// (cuBLAS transpose flags, no copies) and views that need a contiguous copy, 1-d operands, the
// odd sizes 1, 17, 33, 65 and K = 0. Skipped (exit 77) without a device.
//
// Tolerances: cuBLAS sums in its own order (float32 products of K <= 130 terms of N(0, 1)
// values: a few ulp of the sum's magnitude); the emulator runs the CPU's GEMM itself.
#include <functional>

#include "../helpers.h"
#include "cuda/blas.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

namespace {

using View = std::function<Tensor(const Tensor&)>;
const View kSame = [](const Tensor& t) { return t; };
const View kT = [](const Tensor& t) { return t.transpose(-1, -2); };

double rtol_of(DType dt) { return dt == kFloat32 ? 2e-5 : 1e-12; }
double atol_of(DType dt) { return dt == kFloat32 ? 2e-5 : 1e-12; }

// matmul(va(a), vb(b)) on both devices from the same random a [sa], b [sb]: the products, and
// the gradients of sum(out · w) for a random w, must agree; the CUDA gradients stay on the GPU.
void parity(const Shape& sa, const View& va, const Shape& sb, const View& vb, DType dt, uint64_t seed) {
  CAPTURE(to_string(sa));
  CAPTURE(to_string(sb));
  CAPTURE(dtype_name(dt));
  Generator g(seed);
  Tensor a = randn(sa, dt, &g).requires_grad_(), b = randn(sb, dt, &g).requires_grad_();
  Tensor ad = a.detach().cuda().requires_grad_(), bd = b.detach().cuda().requires_grad_();
  Tensor out = matmul(va(a), vb(b)), outd = matmul(va(ad), vb(bd));
  REQUIRE(outd.is_cuda());
  check_close(outd.cpu(), out, rtol_of(dt), atol_of(dt), "forward");
  Tensor w = randn(out.shape(), dt, &g);
  sum(mul(out, w)).backward();
  sum(mul(outd, w.cuda())).backward();
  REQUIRE(ad.grad().defined());
  REQUIRE(bd.grad().defined());
  CHECK(ad.grad().is_cuda());
  CHECK(bd.grad().is_cuda());
  check_close(ad.grad().cpu(), a.grad(), rtol_of(dt), atol_of(dt), "grad a");
  check_close(bd.grad().cpu(), b.grad(), rtol_of(dt), atol_of(dt), "grad b");
}

const DType kDtypes[] = {kFloat32, kFloat64};
const int64_t kOdd[] = {1, 17, 33, 65};

}  // namespace

TEST_CASE("2-d products of odd sizes, every transpose combination") {
  uint64_t seed = 1;
  for (DType dt : kDtypes)
    for (int64_t M : kOdd)
      for (int64_t K : kOdd)
        for (int64_t N : {1, 33, 65}) {
          parity({M, K}, kSame, {K, N}, kSame, dt, seed++);
          parity({K, M}, kT, {N, K}, kT, dt, seed++);  // a.t() @ b.t(): both cuBLAS-transposed
          if (M == 17 && N == 33) {
            parity({K, M}, kT, {K, N}, kSame, dt, seed++);
            parity({M, K}, kSame, {N, K}, kT, dt, seed++);
          }
        }
}

TEST_CASE("batched and broadcast batches") {
  uint64_t seed = 100;
  for (DType dt : kDtypes) {
    // Equal batches: one strided batch.
    parity({3, 17, 33}, kSame, {3, 33, 65}, kSame, dt, seed++);
    // x [B, T, D] @ w [D, N] (one GEMM over B·T rows) and with w transposed (nn.Linear).
    parity({2, 17, 33}, kSame, {33, 65}, kSame, dt, seed++);
    parity({2, 17, 33}, kSame, {65, 33}, kT, dt, seed++);
    // A transposed a with a shared b cannot fold rows: a strided batch with stride_b = 0.
    parity({2, 33, 17}, kT, {33, 65}, kSame, dt, seed++);
    // Shared a, batched b.
    parity({17, 33}, kSame, {4, 33, 1}, kSame, dt, seed++);
    // a [B, 1, M, K] @ b [H, K, N]: B host calls of H products each.
    parity({2, 1, 17, 33}, kSame, {3, 33, 17}, kSame, dt, seed++);
    // Batch dims permuted (no single batch stride), plus transposed matrices.
    const View swap01 = [](const Tensor& t) { return t.transpose(0, 1); };
    const View swap01_t = [](const Tensor& t) { return t.transpose(0, 1).transpose(-1, -2); };
    parity({4, 3, 17, 33}, swap01, {3, 4, 33, 65}, kSame, dt, seed++);
    parity({4, 3, 33, 17}, swap01_t, {4, 3, 65, 33}, swap01_t, dt, seed++);
    // A view no GEMM layout fits (strided columns): copied to contiguous first.
    const View every_other = [](const Tensor& t) { return t.slice(-1, 0, t.size(-1), 2); };
    parity({2, 17, 66}, every_other, {33, 17}, kSame, dt, seed++);
    // An expanded (stride 0) batch dim of a: batch stride 0.
    const View expand_rows = [](const Tensor& t) { return t.expand({5, 17, 33}); };
    parity({1, 17, 33}, expand_rows, {5, 33, 65}, kSame, dt, seed++);
  }
}

TEST_CASE("1-d operands and empty products") {
  uint64_t seed = 200;
  for (DType dt : kDtypes) {
    parity({33}, kSame, {33}, kSame, dt, seed++);           // dot product, 0-d
    parity({33}, kSame, {2, 33, 17}, kSame, dt, seed++);    // vector @ batch
    parity({2, 17, 65}, kSame, {65}, kSame, dt, seed++);    // batch @ vector
  }
  Tensor a = zeros({3, 0}, Device::cuda()), b = zeros({0, 4}, Device::cuda());
  check_values(matmul(a, b), std::vector<double>(12, 0.0));
  CHECK(matmul(zeros({0, 5}, Device::cuda()), zeros({5, 4}, Device::cuda())).numel() == 0);
}

TEST_CASE("TF32 switch and errors") {
  CHECK_FALSE(cuda::allow_tf32());
  Generator g(7);
  Tensor a = randn({65, 33}, kFloat32, &g), b = randn({33, 17}, kFloat32, &g);
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  // TF32 keeps about 10 mantissa bits per product: a looser bound (the emulator is exact).
  check_close(matmul(a.cuda(), b.cuda()).cpu(), matmul(a, b), 1e-2, 5e-2);
  cuda::set_allow_tf32(false);
  check_close(matmul(a.cuda(), b.cuda()).cpu(), matmul(a, b), rtol_of(kFloat32), atol_of(kFloat32));
  check_error([&] { matmul(a.cuda(), b); }, "different devices");
  check_error([&] { matmul(a.cuda(), b.cuda().to(kFloat64)); }, "dtypes differ");
  check_error([&] { matmul(a.cuda(), a.cuda()); }, "inner dimensions differ");
}
