// tests/test_tensor.cpp: Tensor metadata, views, factories, copies, printing.
#include "helpers.h"

using namespace aft;
using namespace aft::test;

TEST_CASE("factories and element access") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == kFloat32);
  CHECK(z.is_contiguous());
  check_values(z, {0, 0, 0, 0, 0, 0});
  Tensor o = ones({4}, kFloat64);
  CHECK(o.dtype() == kFloat64);
  check_values(o, {1, 1, 1, 1});
  check_values(full({2}, 2.5), {2.5, 2.5});
  check_values(arange(5), {0, 1, 2, 3, 4});
  check_values(arange(1.0, 2.0, 0.25, kFloat64), {1, 1.25, 1.5, 1.75});
  Tensor v = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(v.at<float>({1, 2}) == 6.0f);
  CHECK(v.at({0, 1}) == 2.0);
  CHECK(scalar_tensor(3.0).item() == 3.0);
  check_error([] { zeros({2, -1}); }, "negative extent");
  check_error([] { from_vector<float>({1, 2, 3}, {2, 2}); }, "do not fill");
  check_error([&] { (void)v.item(); }, "not 1");
}

TEST_CASE("random factories are reproducible and well distributed") {
  Generator a(42), b(42);
  Tensor x = randn({1000}, kFloat32, &a), y = randn({1000}, kFloat32, &b);
  check_close(x, y, 0, 0);
  std::vector<double> v = x.to_vector<double>();
  double m = 0, s2 = 0;
  for (double e : v) m += e;
  m /= v.size();
  for (double e : v) s2 += (e - m) * (e - m);
  s2 /= v.size();
  CHECK(std::fabs(m) < 0.1);
  CHECK(std::fabs(s2 - 1) < 0.1);
  // The same seed gives the same numbers whatever the thread count.
  int nt = num_threads();
  set_num_threads(1);
  Generator c(7);
  Tensor big1 = rand({100003}, kFloat64, &c);
  set_num_threads(2);
  Generator d(7);
  Tensor big2 = rand({100003}, kFloat64, &d);
  set_num_threads(nt);
  check_close(big1, big2, 0, 0);
  std::vector<double> u = big1.to_vector<double>();
  CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
  CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
  Tensor r = randint(-3, 4, {10000});
  std::vector<int64_t> ri = r.to_vector<int64_t>();
  CHECK(*std::min_element(ri.begin(), ri.end()) == -3);
  CHECK(*std::max_element(ri.begin(), ri.end()) == 3);
  check_error([] { randint(3, 3, {2}); }, "empty range");
}

TEST_CASE("views share storage") {
  Tensor x = arange(0.0, 24.0, 1.0, kFloat32).reshape({2, 3, 4});
  Tensor t = x.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(!t.is_contiguous());
  CHECK(t.storage() == x.storage());
  CHECK(t.at({3, 2, 1}) == x.at({1, 2, 3}));
  Tensor p = x.permute({1, 2, 0});
  CHECK(p.at({2, 3, 1}) == x.at({1, 2, 3}));
  Tensor n = x.narrow(1, 1, 2);
  CHECK(n.shape() == Shape{2, 2, 4});
  CHECK(n.at({1, 0, 0}) == 16.0);
  Tensor s = x.slice(2, 0, 4, 2);
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.at({0, 0, 1}) == 2.0);
  Tensor sel = x.select(0, 1);
  CHECK(sel.shape() == Shape{3, 4});
  CHECK(sel.at({0, 0}) == 12.0);
  CHECK(x.unsqueeze(1).shape() == Shape{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(x.unsqueeze(0).squeeze().shape() == Shape{2, 3, 4});
  Tensor e = from_vector<float>({1, 2, 3}, {3, 1}).expand({3, 4});
  CHECK(e.strides() == Strides{1, 0});
  CHECK(e.at({2, 3}) == 3.0);
  CHECK(x.view({6, -1}).shape() == Shape{6, 4});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  // A transposed tensor cannot be viewed flat without a copy; reshape copies.
  check_error([&] { t.view({24}); }, "without a copy");
  Tensor r = t.reshape({24});
  CHECK(r.at({1}) == x.at({1, 0, 0}));
  check_error([&] { x.view({5, 5}); }, "cannot view");
  check_error([&] { x.permute({0, 0, 1}); }, "repeated");
  check_error([&] { x.narrow(1, 2, 2); }, "out of range");
  check_error([&] { x.expand({3, 3, 4}); }, "cannot expand");
  check_error([&] { x.size(3); }, "out of range");
}

TEST_CASE("copies and conversions") {
  Tensor x = arange(0.0, 6.0, 1.0, kFloat64).reshape({2, 3});
  Tensor t = x.t().contiguous();
  CHECK(t.is_contiguous());
  check_values(t, {0, 3, 1, 4, 2, 5});
  Tensor c = x.clone();
  CHECK(c.storage() != x.storage());
  Tensor f = x.to(kFloat32);
  CHECK(f.dtype() == kFloat32);
  check_values(f, {0, 1, 2, 3, 4, 5});
  Tensor i = from_vector<double>({-1.7, 2.2}).to(kInt64);
  check_values(i, {-1, 2});
  Tensor b = from_vector<double>({0.0, 2.0}).to(kBool);
  check_values(b, {0, 1});
  Tensor dst = zeros({2, 3}, kFloat64);
  dst.copy_(from_vector<float>({1, 2, 3}));  // broadcast and convert
  check_values(dst, {1, 2, 3, 1, 2, 3});
  check_error([&] { dst.copy_(zeros({4})); }, "broadcast");
}

TEST_CASE("printing") {
  Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  std::string s = fmt::format("{}", x);
  CHECK(s.find("[[1, 2],") != std::string::npos);
  CHECK(s.find("dtype=float32") != std::string::npos);
  CHECK(fmt::format("{}", Shape{2, 3}) == "[2, 3]");
  CHECK(fmt::format("{}", Device::cuda(1)) == "cuda:1");
  CHECK(fmt::format("{}", kInt64) == "int64");
  std::string big = fmt::format("{}", arange(100));
  CHECK(big.find("...") != std::string::npos);
  CHECK(parse_device("cuda:2") == Device::cuda(2));
  check_error([] { parse_device("gpu"); }, "cannot parse");
}
