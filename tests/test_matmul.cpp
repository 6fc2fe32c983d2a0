// tests/test_matmul.cpp: the matmul op: forward against a loop, batching and broadcasting, 1-d
// operands, non-contiguous inputs, gradients (gradcheck and the shared-weight fast path), empty
// shapes and errors. The CPU gemm under it is tested in tests/test_gemm.cpp.

#include "helpers.h"

using namespace aft;
using namespace aft::test;

namespace {

// out[z, i, j] = Σ_k a[z, i, k] · b[z, k, j] by loops on materialised float64 copies, with the
// batch dims broadcast and 1-d operands handled as NumPy does.
Tensor loop_matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.detach().to(kFloat64), b = b_in.detach().to(kFloat64);
  const bool va = a.ndim() == 1, vb = b.ndim() == 1;
  if (va) a = a.unsqueeze(0);
  if (vb) b = b.unsqueeze(1);
  const int64_t M = a.shape().back(-2), K = a.shape().back(), N = b.shape().back();
  Shape ab, bb;
  for (int d = 0; d < a.ndim() - 2; ++d) ab.push_back(a.size(d));
  for (int d = 0; d < b.ndim() - 2; ++d) bb.push_back(b.size(d));
  Shape batch = broadcast_shapes(ab, bb, "test");
  Shape sa = batch, sb = batch, so = batch;
  sa.push_back(M), sa.push_back(K), sb.push_back(K), sb.push_back(N), so.push_back(M), so.push_back(N);
  std::vector<double> av = a.expand(sa).contiguous().to_vector<double>();
  std::vector<double> bv = b.expand(sb).contiguous().to_vector<double>();
  std::vector<double> ov(so.numel());
  for (int64_t z = 0; z < batch.numel(); ++z)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[(z * M + i) * K + k] * bv[(z * K + k) * N + j];
        ov[(z * M + i) * N + j] = s;
      }
  Tensor out = from_vector<double>(ov, so);
  if (va) out = out.squeeze(-2);
  if (vb) out = out.squeeze(-1);
  return out;
}

Tensor rnd(const Shape& s, DType dt, uint64_t seed) {
  Generator g(seed);
  return randn(s, dt, &g);
}

void check_matmul(const Tensor& a, const Tensor& b) {
  CAPTURE(to_string(a.shape()));
  CAPTURE(to_string(b.shape()));
  Tensor out = matmul(a, b), ref = loop_matmul(a, b);
  CHECK(out.dtype() == a.dtype());
  const bool f32 = a.dtype() == kFloat32;
  check_close(out, ref, f32 ? 1e-4 : 1e-11, f32 ? 1e-4 : 1e-11, "matmul vs loop");
}

}  // namespace

TEST_CASE("matmul forward: 2-d, batched, broadcast, 1-d") {
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{3, 4}, {4, 5}},          {{1, 1}, {1, 1}},           {{20, 33}, {33, 17}},
        {{2, 3, 4}, {2, 4, 5}},    {{2, 3, 4}, {4, 5}},        {{3, 4}, {2, 4, 5}},
        {{2, 1, 3, 4}, {5, 4, 6}}, {{1, 3, 4}, {2, 1, 4, 2}},  {{4}, {4, 5}},
        {{4}, {2, 4, 5}},          {{3, 4}, {4}},              {{2, 3, 4}, {4}},
        {{7}, {7}},                {{6, 50, 70}, {70, 90}},    {{3, 0, 4}, {4, 2}},
        {{3, 5, 0}, {0, 2}},       {{0, 3, 4}, {4, 2}},        {{1, 3, 4}, {4, 2}}};
    for (auto& [sa, sb] : cases) check_matmul(rnd(sa, dt, 1), rnd(sb, dt, 2));
  }
  // Exact small values: [[1, 2], [3, 4]] @ [5, 6] = [17, 39]; [1, 2] @ [3, 4] = 11 (0-d).
  Tensor m = from_vector<double>({1, 2, 3, 4}, {2, 2}), v = from_vector<double>({5, 6});
  check_values(matmul(m, v), {17, 39});
  Tensor dot = matmul(from_vector<double>({1, 2}), from_vector<double>({3, 4}));
  CHECK(dot.ndim() == 0);
  check_values(dot, {11});
  // K = 0 gives zeros, M = 0 an empty result.
  check_values(matmul(zeros({2, 0}), zeros({0, 3})), {0, 0, 0, 0, 0, 0});
  CHECK(matmul(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
}

TEST_CASE("matmul forward: transposed and other non-contiguous operands") {
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    Tensor a = rnd({9, 13}, dt, 3), b = rnd({11, 13}, dt, 4), c = rnd({13, 11}, dt, 5);
    check_matmul(a, b.t());                  // trans_b view
    check_matmul(c.t(), a.t());              // both transposed
    check_matmul(a.slice(1, 0, 13, 2), rnd({7, 5}, dt, 6));  // column stride 2: copied
    check_matmul(a.narrow(0, 2, 5), c);      // row view of a larger matrix (lda = 13)
    check_matmul(a.narrow(1, 1, 11), c.narrow(0, 2, 11).narrow(1, 3, 4));  // lda > K, ldb > N
    Tensor x = rnd({4, 6, 13}, dt, 7);
    check_matmul(x, b.t());                                    // batch folded into M
    check_matmul(x.transpose(1, 2).transpose(1, 2), c);       // same, through views
    check_matmul(x.transpose(0, 1), c);                        // batch not foldable
    check_matmul(rnd({6, 4, 13}, dt, 8).transpose(0, 1), c);  // strided batch rows
    check_matmul(x, rnd({4, 11, 13}, dt, 9).transpose(1, 2));  // batched trans_b
    check_matmul(rnd({4, 13, 6}, dt, 10).transpose(1, 2), c);  // batched trans_a
    check_matmul(rnd({13}, dt, 11).expand({6, 13}), c);        // stride-0 rows: copied
    check_matmul(x, rnd({1, 13, 1}, dt, 12).expand({4, 13, 3}));  // broadcast by expand
  }
}

TEST_CASE("matmul: many small batch entries (threads over the batch) and a large product") {
  check_matmul(rnd({64, 5, 7}, kFloat32, 13), rnd({64, 7, 3}, kFloat32, 14));
  check_matmul(rnd({3, 130, 150}, kFloat32, 15), rnd({150, 140}, kFloat32, 16));
  check_matmul(rnd({2, 130, 150}, kFloat64, 17), rnd({2, 150, 140}, kFloat64, 18));
}

TEST_CASE("matmul gradients: gradcheck") {
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 5}},       {{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}},  {{3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {3, 4, 2}}, {{4}, {4, 5}},       {{2, 3, 4}, {4}},     {{5}, {5}},
      {{1, 3, 4}, {1, 4, 2}}, {{3, 2, 4}, {1, 4, 3}}};
  for (auto& [sa, sb] : cases) {
    CAPTURE(to_string(sa));
    CAPTURE(to_string(sb));
    check_gradcheck(mm, {leaf(sa, 1), leaf(sb, 2)});
  }
  // Transposed views, and only one operand requiring grad.
  check_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].transpose(0, 1)); },
                  {leaf({4, 3}, 3), leaf({5, 4}, 4)});
  check_gradcheck(mm, {leaf({3, 4}, 5), rnd({4, 2}, kFloat64, 6)});
  check_gradcheck(mm, {rnd({2, 3, 4}, kFloat64, 7), leaf({4, 2}, 8)});
}

TEST_CASE("matmul saves an operand only when the other one needs a gradient") {
  Tensor w = leaf({4, 3}, 9);
  Tensor x = rnd({2, 5, 4}, kFloat64, 10);
  Tensor y = matmul(x, w);
  x.fill_(1.0);  // x is saved (w needs grad): the change is reported
  check_error([&] { sum(y).backward(); }, "modified in place");
  autograd::clear_tape();
  // a needs a gradient, b does not: b is saved (dA = G @ B^T) ...
  Tensor xs = rnd({4, 2}, kFloat64, 12);
  Tensor y3 = matmul(w.t(), xs);
  xs.fill_(2.0);
  check_error([&] { sum(y3).backward(); }, "modified in place");
  autograd::clear_tape();
  // ... and a is not (only dB = A^T @ G would need it): changing a is harmless.
  Tensor a = leaf({3, 4}, 13);
  Tensor b = rnd({4, 2}, kFloat64, 14);
  Tensor y4 = matmul(a, b);
  {
    autograd::NoGradGuard ng;
    a.fill_(5.0);
  }
  sum(y4).backward();  // dA = G @ B^T uses only b
  check_close(a.grad(), matmul(ones({3, 2}, kFloat64), b.t()), 1e-12, 1e-12);
}

TEST_CASE("matmul weight gradient over a batch equals the sum of per-entry gradients") {
  Tensor x = rnd({3, 5, 4}, kFloat32, 15), w = rnd({4, 6}, kFloat32, 16).requires_grad_();
  Tensor g = rnd({3, 5, 6}, kFloat32, 17);
  matmul(x, w).backward(g);
  Tensor ref = zeros({4, 6}, kFloat64);
  for (int z = 0; z < 3; ++z) ref = add(ref, loop_matmul(x.select(0, z).t(), g.select(0, z)));
  check_close(w.grad(), ref, 1e-5, 1e-5);
}

TEST_CASE("matmul errors") {
  Tensor a = zeros({2, 3}), b = zeros({4, 5});
  check_error([&] { matmul(a, b); }, "matmul: inner dimensions differ: [2, 3] @ [4, 5]");
  check_error([&] { matmul(zeros({3}), zeros({4})); }, "inner dimensions differ: [3] @ [4]");
  check_error([&] { matmul(zeros({2, 3, 4}), zeros({3, 4, 5})); }, "batch dimensions cannot be broadcast");
  check_error([&] { matmul(scalar_tensor(2.0), zeros({3})); }, "at least 1 dimension");
  check_error([&] { matmul(zeros({2, 3}), zeros({3, 2}, kFloat64)); }, "matmul: dtypes differ");
  check_error([&] { matmul(zeros({2, 3}, kInt64), zeros({3, 2}, kInt64)); }, "matmul: expected a float");
  check_error([&] { matmul(Tensor(), zeros({3, 2})); }, "matmul: a is an undefined tensor");
}
