// tests/test_shape_ops.cpp: cat, stack, split, index_select, gather, embedding: forward against
// plain loops, gradients (gradcheck, and the scatter-add of repeated indices), edge cases,
// errors, and thread-count independence of the scatter-add backward.
#include "helpers.h"

using namespace aft;
using namespace aft::test;

namespace {

using In = std::vector<Tensor>;

// Element (i, j, k) of a 3-d tensor from its row-major vector.
double at3(const std::vector<double>& v, const Shape& s, int64_t i, int64_t j, int64_t k) {
  return v[static_cast<size_t>((i * s[1] + j) * s[2] + k)];
}

Tensor idx(std::vector<int64_t> v) { return from_vector<int64_t>(v); }

// Gradient of sum(f(x) * proj) with respect to x, for a given thread count.
Tensor grad_with_threads(int threads, const std::function<Tensor(const Tensor&)>& f, const Tensor& x0) {
  int prev = num_threads();
  set_num_threads(threads);
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = f(x);
  Generator g(5);
  sum(mul(y, randn(y.shape(), y.dtype(), &g))).backward();
  set_num_threads(prev);
  return x.grad();
}

void check_bitwise_equal(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  size_t diff = 0;
  for (size_t i = 0; i < va.size(); ++i) diff += va[i] != vb[i];
  CHECK_MESSAGE(diff == 0, diff, " elements differ");
}

}  // namespace

TEST_CASE("cat: forward against a loop, any dim, non-contiguous inputs") {
  Generator g(1);
  Tensor a = randn({2, 3, 4}, kFloat64, &g), b = randn({2, 1, 4}, kFloat64, &g);
  Tensor c = randn({4, 2, 2}, kFloat64, &g).permute({1, 2, 0});  // [2, 2, 4], non-contiguous
  REQUIRE(!c.is_contiguous());
  for (int64_t dim : {1, -2}) {
    Tensor y = cat({a, b, c}, dim);
    REQUIRE(y.shape() == Shape({2, 6, 4}));
    std::vector<double> va = a.to_vector(), vb = b.to_vector(), vc = c.contiguous().to_vector(), vy = y.to_vector();
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 6; ++j)
        for (int64_t k = 0; k < 4; ++k) {
          double want = j < 3 ? at3(va, a.shape(), i, j, k)
                              : j < 4 ? at3(vb, b.shape(), i, j - 3, k) : at3(vc, c.shape(), i, j - 4, k);
          CHECK(at3(vy, y.shape(), i, j, k) == want);
        }
  }
  // dim 0 and last dim, a size-0 piece, int64 and bool.
  check_values(cat({idx({1, 2}), idx({}), idx({3})}, 0), {1, 2, 3});
  CHECK(cat({idx({1, 2})}, 0).dtype() == kInt64);
  Tensor m = cat({ones({2, 1}, kBool), zeros({2, 2}, kBool)}, -1);
  check_values(m, {1, 0, 0, 1, 0, 0});
  Tensor e = cat({zeros({0, 3}), zeros({0, 3})}, 0);
  CHECK(e.shape() == Shape({0, 3}));
}

TEST_CASE("cat, stack: gradients") {
  check_gradcheck([](const In& x) { return cat({x[0], x[1], x[2]}, -1); },
                  {leaf({2, 3}, 1), leaf({2, 1}, 2), leaf({2, 2}, 3)});
  check_gradcheck([](const In& x) { return cat({x[0], x[1]}, 0); }, {leaf({1, 3}, 1), leaf({2, 3}, 2)});
  // A mix of inputs with and without grad; the same tensor twice.
  Tensor a = leaf({2, 2}, 4);
  Tensor b = ones({2, 3}, kFloat64);
  Tensor y = cat({a, b, a}, 1);
  sum(mul(y, arange(0, 14, 1, kFloat64).reshape({2, 7}))).backward();
  check_values(a.grad(), {0 + 5, 1 + 6, 7 + 12, 8 + 13});
  check_gradcheck([](const In& x) { return stack({x[0], x[1], x[0]}, 1); }, {leaf({2, 3}, 5), leaf({2, 3}, 6)});
  Tensor s = stack({idx({1, 2}), idx({3, 4})}, -1);
  CHECK(s.shape() == Shape({2, 2}));
  check_values(s, {1, 3, 2, 4});
  check_values(stack({scalar_tensor(1.0), scalar_tensor(2.0)}, 0), {1, 2});
}

TEST_CASE("cat, stack: errors") {
  check_error([] { cat({}, 0); }, "cat: needs at least one tensor");
  check_error([] { cat({zeros({2, 3}), zeros({3, 3})}, 1); }, "cat: tensor 1 has shape [3, 3] but tensor 0 has [2, 3]");
  check_error([] { cat({zeros({2, 3}), zeros({2, 3, 1})}, 0); }, "must match except in dim 0");
  check_error([] { cat({zeros({2}), zeros({2}, kFloat64)}, 0); }, "cat: tensor 1 is float64");
  check_error([] { cat({scalar_tensor(1.0)}, 0); }, "cat: cannot concatenate 0-d tensors");
  check_error([] { cat({zeros({2})}, 1); }, "cat: dim 1 out of range");
  check_error([] { cat({zeros({2}), Tensor()}, 0); }, "cat: a tensor in the list is an undefined tensor");
  check_error([] { stack({zeros({2, 3}), zeros({3, 2})}, 0); }, "stack: tensor 1 has shape [3, 2] but tensor 0 has [2, 3]");
  check_error([] { stack({zeros({2})}, 2); }, "stack: dim 2 out of range");
}

TEST_CASE("split: pieces are views with the right values") {
  Tensor x = arange(0, 15, 1, kFloat64).reshape({3, 5});
  std::vector<Tensor> p = split(x, 2, -1);
  REQUIRE(p.size() == 3);
  CHECK(p[0].shape() == Shape({3, 2}));
  CHECK(p[2].shape() == Shape({3, 1}));
  check_values(p[1], {2, 3, 7, 8, 12, 13});
  check_values(p[2], {4, 9, 14});
  CHECK(p[1].storage() == x.storage());  // no copy
  std::vector<Tensor> q = split(x, std::vector<int64_t>{2, 0, 1}, 0);
  REQUIRE(q.size() == 3);
  CHECK(q[1].shape() == Shape({0, 5}));
  check_values(q[2], {10, 11, 12, 13, 14});
  CHECK(split(x, 5, 1).size() == 1);
  CHECK(split(x, 7, 1).size() == 1);
  std::vector<Tensor> e = split(zeros({0, 2}), 3, 0);  // one empty piece, as PyTorch
  REQUIRE(e.size() == 1);
  CHECK(e[0].shape() == Shape({0, 2}));
  check_values(split(idx({1, 2, 3}), 2, 0)[1], {3});  // int64
}

TEST_CASE("split: gradients, pieces without a gradient get zeros") {
  Tensor x = leaf({4, 3}, 1);
  std::vector<Tensor> p = split(x, std::vector<int64_t>{1, 2, 1}, 0);
  sum(mul(p[2], 3.0)).backward();  // only piece 2 is used
  check_values(x.grad(), {0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3});
  check_gradcheck([](const In& x) {
    std::vector<Tensor> p = split(x[0], 2, 1);
    return cat({mul(p[0], p[1]), p[2]}, 1);
  }, {leaf({2, 5}, 2)});
  // Non-contiguous input.
  check_gradcheck([](const In& x) { return mul(split(x[0].t(), 1, 0)[1], 2.0); }, {leaf({3, 2}, 3)});
}

TEST_CASE("split: errors") {
  check_error([] { split(zeros({4}), 0, 0); }, "split: split_size must be positive, got 0");
  check_error([] { split(zeros({4, 2}), std::vector<int64_t>{1, 2}, 0); }, "split: sizes [1, 2] add up to 3 but dim 0 of shape [4, 2] is 4");
  check_error([] { split(zeros({4}), std::vector<int64_t>{5, -1}, 0); }, "split: sizes must be non-negative");
  check_error([] { split(scalar_tensor(1.0), 1, 0); }, "split: cannot split a 0-d tensor");
}

TEST_CASE("index_select: forward against a loop, every dim, repeated and empty index") {
  Generator g(2);
  Tensor x = randn({3, 4, 5}, kFloat64, &g);
  std::vector<double> vx = x.to_vector();
  Tensor ix = idx({2, 0, 2, 1});
  for (int64_t dim : {0, 1, 2, -1}) {
    int d = dim < 0 ? 2 : static_cast<int>(dim);
    Tensor y = index_select(x, dim, ix);
    Shape want = x.shape();
    want[d] = 4;
    REQUIRE(y.shape() == want);
    std::vector<double> vy = y.to_vector();
    for (int64_t i = 0; i < want[0]; ++i)
      for (int64_t j = 0; j < want[1]; ++j)
        for (int64_t k = 0; k < want[2]; ++k) {
          int64_t a[3] = {i, j, k};
          a[d] = ix.at<int64_t>({a[d]});
          CHECK(at3(vy, y.shape(), i, j, k) == at3(vx, x.shape(), a[0], a[1], a[2]));
        }
  }
  CHECK(index_select(x, 1, idx({})).shape() == Shape({3, 0, 5}));
  // Non-contiguous x and int64 x.
  Tensor xt = x.transpose(0, 2);  // [5, 4, 3]
  check_close(index_select(xt, 0, idx({4, 1})), index_select(xt.contiguous(), 0, idx({4, 1})), 0, 0);
  check_values(index_select(idx({10, 11, 12}), 0, idx({2, 2, 0})), {12, 12, 10});
}

TEST_CASE("index_select: gradient adds the rows of repeated indices") {
  Tensor x = leaf({4, 2}, 1);
  Tensor y = index_select(x, 0, idx({3, 0, 3, 3}));
  sum(y).backward();
  check_values(x.grad(), {1, 1, 0, 0, 0, 0, 3, 3});
  for (int64_t dim : {0, 1, -1})
    check_gradcheck([dim](const In& x) { return index_select(x[0], dim, idx({1, 1, 0})); }, {leaf({2, 3, 2}, 2)});
  check_gradcheck([](const In& x) { return index_select(x[0].t(), 1, idx({2, 0, 2})); }, {leaf({3, 2}, 3)});
}

TEST_CASE("gather: forward against a loop, every dim, smaller index") {
  Generator g(3);
  Tensor x = randn({3, 4, 5}, kFloat64, &g);
  std::vector<double> vx = x.to_vector();
  for (int d = 0; d < 3; ++d) {
    Shape is = {2, 3, 4};  // no larger than x in every dim
    Tensor index = randint(0, x.shape()[d], is, kInt64, &g);
    Tensor y = gather(x, d - 3, index);  // negative dims
    REQUIRE(y.shape() == is);
    std::vector<double> vy = y.to_vector();
    std::vector<int64_t> vi = index.to_vector<int64_t>();
    for (int64_t i = 0; i < is[0]; ++i)
      for (int64_t j = 0; j < is[1]; ++j)
        for (int64_t k = 0; k < is[2]; ++k) {
          int64_t a[3] = {i, j, k};
          a[d] = vi[static_cast<size_t>((i * is[1] + j) * is[2] + k)];
          CHECK(at3(vy, is, i, j, k) == at3(vx, x.shape(), a[0], a[1], a[2]));
        }
  }
  // 2-d: out[i][j] = x[i][index[i][j]]; non-contiguous index and x.
  Tensor x2 = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(gather(x2, 1, from_vector<int64_t>({2, 0, 1, 1}, {2, 2})), {3, 1, 5, 5});
  Tensor it = from_vector<int64_t>({2, 1, 0, 1}, {2, 2}).t();  // [[2, 0], [1, 1]]
  check_values(gather(x2, 1, it), {3, 1, 5, 5});
  check_values(gather(x2.t(), 0, from_vector<int64_t>({2, 0}, {1, 2})), {3, 4});
  CHECK(gather(x2, 0, zeros({0, 3}, kInt64)).shape() == Shape({0, 3}));
}

TEST_CASE("gather: gradients with repeated indices") {
  Tensor x = leaf({2, 3}, 1);
  gather(x, 1, from_vector<int64_t>({2, 2, 2, 0, 1, 0}, {2, 3})).backward(ones({2, 3}, kFloat64));
  check_values(x.grad(), {0, 0, 3, 2, 1, 0});
  for (int d = 0; d < 3; ++d)
    check_gradcheck([d](const In& x) {
      Generator g(9);
      Tensor index = randint(0, 3, {2, 3, 2}, kInt64, &g);
      return gather(x[0], d, index);
    }, {leaf({3, 3, 3}, 2)});
}

TEST_CASE("embedding: forward, repeated indices, any index shape") {
  Generator g(4);
  Tensor w = randn({6, 3}, kFloat64, &g);
  Tensor ind = from_vector<int64_t>({5, 1, 5, 0, 2, 5}, {2, 3});
  Tensor y = embedding(w, ind);
  REQUIRE(y.shape() == Shape({2, 3, 3}));
  std::vector<double> vw = w.to_vector(), vy = y.to_vector();
  std::vector<int64_t> vi = ind.to_vector<int64_t>();
  for (size_t p = 0; p < vi.size(); ++p)
    for (size_t d = 0; d < 3; ++d) CHECK(vy[p * 3 + d] == vw[static_cast<size_t>(vi[p]) * 3 + d]);
  CHECK(embedding(w, scalar_tensor(2, kInt64)).shape() == Shape({3}));
  CHECK(embedding(w, zeros({2, 0}, kInt64)).shape() == Shape({2, 0, 3}));
  // The gradient of row v is the sum of the upstream rows that read it.
  Tensor wl = w.detach().requires_grad_();
  Tensor gy = arange(0, 18, 1, kFloat64).reshape({2, 3, 3});
  embedding(wl, ind).backward(gy);
  check_values(wl.grad(), {9, 10, 11, 3, 4, 5, 12, 13, 14, 0, 0, 0, 0, 0, 0,
                           0 + 6 + 15, 1 + 7 + 16, 2 + 8 + 17});
  check_gradcheck([](const In& x) { return embedding(x[0], from_vector<int64_t>({3, 3, 0, 3}, {4, 1})); },
                  {leaf({4, 2}, 5)});
  check_gradcheck([](const In& x) { return embedding(x[0].t(), from_vector<int64_t>({1, 0, 1})); },
                  {leaf({3, 2}, 6)});
}

TEST_CASE("index ops: errors name the op, the bad index and the valid range") {
  Tensor x = zeros({3, 4});
  check_error([&] { index_select(x, 0, idx({0, 3})); }, "index_select: index 3 is out of range [0, 3) for dim 0 of shape [3, 4]");
  check_error([&] { index_select(x, 1, idx({-1})); }, "index_select: index -1 is out of range [0, 4)");
  check_error([&] { index_select(x, 0, zeros({2}, kFloat32)); }, "index_select: index must be int64, got float32");
  check_error([&] { index_select(x, 0, zeros({1, 1}, kInt64)); }, "index_select: index must be 1-d");
  check_error([&] { index_select(x, 2, idx({0})); }, "index_select: dim 2 out of range");
  check_error([&] { gather(x, 1, from_vector<int64_t>({0, 4}, {1, 2})); }, "gather: index 4 is out of range [0, 4) for dim 1 of shape [3, 4]");
  check_error([&] { gather(x, 1, zeros({4, 1}, kInt64)); }, "gather: index of shape [4, 1] does not fit x of shape [3, 4]");
  check_error([&] { gather(x, 1, zeros({3}, kInt64)); }, "does not fit");
  check_error([&] { embedding(zeros({5, 2}), idx({1, 5})); }, "embedding: index 5 is out of range [0, 5) for weight of shape [5, 2]");
  check_error([&] { embedding(zeros({5}), idx({1})); }, "embedding: weight must be 2-d");
  check_error([&] { embedding(zeros({5, 2}), zeros({2})); }, "embedding: index must be int64");
}

TEST_CASE("scatter-add backward does not depend on the thread count") {
  Generator g(10);
  Tensor w = randn({50, 67}, kFloat64, &g);
  Tensor ind = randint(0, 5, {4000}, kInt64, &g);  // many repeats of few rows
  auto emb = [&](const Tensor& t) { return embedding(t, ind); };
  Tensor g1 = grad_with_threads(1, emb, w);
  for (int th : {2, 3, 7}) check_bitwise_equal(grad_with_threads(th, emb, w), g1);
  Tensor x = randn({30, 40, 6}, kFloat64, &g);
  Tensor gi = randint(0, 40, {30, 400, 6}, kInt64, &g);
  auto gat = [&](const Tensor& t) { return gather(t, 1, gi); };
  Tensor h1 = grad_with_threads(1, gat, x);
  for (int th : {2, 5}) check_bitwise_equal(grad_with_threads(th, gat, x), h1);
  auto isel = [&](const Tensor& t) { return index_select(t, 1, ind.narrow(0, 0, 300)); };
  Tensor k1 = grad_with_threads(1, isel, x);
  for (int th : {2, 3}) check_bitwise_equal(grad_with_threads(th, isel, x), k1);
  // And the float32 forward agrees with float64.
  check_close(embedding(w.to(kFloat32), ind), embedding(w, ind), 1e-6, 1e-6);
}
