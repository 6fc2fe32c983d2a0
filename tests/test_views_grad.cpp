// tests/test_views_grad.cpp: the view ops (ops/views.cpp) and copies (ops/copy.cpp) with
// autograd: values against index arithmetic written here, storage sharing (writes through a
// view reach the base), when reshape copies, the errors, and gradients through every view op,
// chains of them and views of views.
#include "helpers.h"
#include "reference.h"

using namespace aft;
using namespace aft::test;
using In = std::vector<Tensor>;

namespace {

// 0, 1, 2, ... in the given shape (float64), so every element names its own position.
Tensor iota(const Shape& s, DType dt = kFloat64) {
  return arange(0.0, static_cast<double>(s.numel()), 1.0, dt).reshape(s);
}

// Expected values of a view v of base b (contiguous, row-major), given a map from v's
// multi-index to b's flat position.
void check_view(const Tensor& v, const Tensor& b, const Shape& shape,
                const std::function<int64_t(const std::vector<int64_t>&)>& src, const std::string& what) {
  CHECK_MESSAGE(v.storage() == b.storage(), what, ": not a view of the base");
  std::vector<double> vb = values(b), want;
  for (int64_t i = 0; i < shape.numel(); ++i) want.push_back(vb[src(unravel(i, shape))]);
  check_ref(v, shape, want, 0, 0, what);
}

}  // namespace

TEST_CASE("view ops: values, shapes and shared storage") {
  const Tensor x = iota({2, 3, 4});  // x[i, j, k] = 12i + 4j + k
  auto at = [](int64_t i, int64_t j, int64_t k) { return 12 * i + 4 * j + k; };

  check_view(x.permute({2, 0, 1}), x, {4, 2, 3}, [&](auto v) { return at(v[1], v[2], v[0]); }, "permute");
  check_view(x.permute({-1, 1, -3}), x, {4, 3, 2}, [&](auto v) { return at(v[2], v[1], v[0]); }, "permute negative");
  check_view(x.transpose(0, 2), x, {4, 3, 2}, [&](auto v) { return at(v[2], v[1], v[0]); }, "transpose");
  check_view(x.transpose(-1, 1), x, {2, 4, 3}, [&](auto v) { return at(v[0], v[2], v[1]); }, "transpose negative");
  check_view(x.select(0, 1).t(), x, {4, 3}, [&](auto v) { return at(1, v[1], v[0]); }, "t");
  check_view(x.narrow(2, 1, 2), x, {2, 3, 2}, [&](auto v) { return at(v[0], v[1], v[2] + 1); }, "narrow");
  check_view(x.narrow(-2, -2, 2), x, {2, 2, 4}, [&](auto v) { return at(v[0], v[1] + 1, v[2]); }, "narrow negative start");
  check_view(x.narrow(1, 3, 0), x, {2, 0, 4}, [&](auto v) { return 0; }, "narrow empty");
  check_view(x.slice(2, 1, 4, 2), x, {2, 3, 2}, [&](auto v) { return at(v[0], v[1], 1 + 2 * v[2]); }, "slice step 2");
  check_view(x.slice(2, 0, 4, 3), x, {2, 3, 2}, [&](auto v) { return at(v[0], v[1], 3 * v[2]); }, "slice step 3");
  check_view(x.slice(2, 1, 100, 5), x, {2, 3, 1}, [&](auto v) { return at(v[0], v[1], 1); }, "slice step > length");
  check_view(x.slice(-1, -3, -1), x, {2, 3, 2}, [&](auto v) { return at(v[0], v[1], v[2] + 1); }, "slice negative bounds");
  check_view(x.slice(1, 2, 1), x, {2, 0, 4}, [&](auto v) { return 0; }, "slice end before start");
  check_view(x.slice(1, 5, 9), x, {2, 0, 4}, [&](auto v) { return 0; }, "slice past the end");
  check_view(x.select(1, 2), x, {2, 4}, [&](auto v) { return at(v[0], 2, v[1]); }, "select");
  check_view(x.select(-1, -1), x, {2, 3}, [&](auto v) { return at(v[0], v[1], 3); }, "select negative");
  check_view(x.select(0, 1).select(0, 2).select(0, 3), x, {}, [&](auto) { return at(1, 2, 3); }, "select to 0-d");
  check_view(x.unsqueeze(0), x, {1, 2, 3, 4}, [&](auto v) { return at(v[1], v[2], v[3]); }, "unsqueeze 0");
  check_view(x.unsqueeze(2), x, {2, 3, 1, 4}, [&](auto v) { return at(v[0], v[1], v[3]); }, "unsqueeze 2");
  check_view(x.unsqueeze(-1), x, {2, 3, 4, 1}, [&](auto v) { return at(v[0], v[1], v[2]); }, "unsqueeze -1");
  check_view(x.unsqueeze(-4), x, {1, 2, 3, 4}, [&](auto v) { return at(v[1], v[2], v[3]); }, "unsqueeze -4");
  check_view(x.unsqueeze(1).squeeze(1), x, {2, 3, 4}, [&](auto v) { return at(v[0], v[1], v[2]); }, "squeeze(dim)");
  check_view(x.squeeze(1), x, {2, 3, 4}, [&](auto v) { return at(v[0], v[1], v[2]); }, "squeeze of a non-1 dim");
  check_view(x.narrow(0, 1, 1).narrow(2, 2, 1).squeeze(), x, {3}, [&](auto v) { return at(1, v[0], 2); }, "squeeze()");
  check_view(x.select(2, 0).unsqueeze(2).expand({2, 3, 5}), x, {2, 3, 5}, [&](auto v) { return at(v[0], v[1], 0); }, "expand");
  check_view(x.select(2, 0).expand({4, -1, -1}), x, {4, 2, 3}, [&](auto v) { return at(v[1], v[2], 0); }, "expand new dim, -1");
  check_view(x.narrow(1, 0, 1).expand({2, 0, 4}), x, {2, 0, 4}, [&](auto) { return 0; }, "expand to 0");
  check_view(x.view({6, -1}), x, {6, 4}, [&](auto v) { return 4 * v[0] + v[1]; }, "view -1");
  check_view(x.view({4, 3, 2}), x, {4, 3, 2}, [&](auto v) { return 6 * v[0] + 2 * v[1] + v[2]; }, "view");
  check_view(x.reshape({24}), x, {24}, [&](auto v) { return v[0]; }, "reshape contiguous");
  check_view(x.flatten(), x, {24}, [&](auto v) { return v[0]; }, "flatten");
  check_view(x.flatten(0, 1), x, {6, 4}, [&](auto v) { return 4 * v[0] + v[1]; }, "flatten 0..1");
  check_view(x.flatten(-2), x, {2, 12}, [&](auto v) { return 12 * v[0] + v[1]; }, "flatten -2..");
  check_view(x.flatten(1, 1), x, {2, 3, 4}, [&](auto v) { return at(v[0], v[1], v[2]); }, "flatten one dim");
  // Views of non-contiguous views that stay views: split and merge dims within a chunk.
  Tensor n = x.narrow(2, 0, 3);  // [2, 3, 3], strides (12, 4, 1): rows are not contiguous
  check_view(n.view({6, 3}), x, {6, 3}, [&](auto v) { return 4 * v[0] + v[1]; }, "view merges outer dims");
  check_view(n.view({2, 3, 3, 1}), x, {2, 3, 3, 1}, [&](auto v) { return at(v[0], v[1], v[2]); }, "view adds 1");
  Tensor p = x.permute({2, 0, 1});  // [4, 2, 3], strides (1, 12, 4): dims 1 and 2 merge
  check_view(p.view({4, 6}), x, {4, 6}, [&](auto v) { return at(v[1] / 3, v[1] % 3, v[0]); }, "view of a permuted tensor");
  Tensor e = x.select(2, 1).unsqueeze(2).expand({2, 3, 6});
  check_view(e.view({2, 3, 2, 3}), x, {2, 3, 2, 3}, [&](auto v) { return at(v[0], v[1], 1); }, "view splits an expanded dim");
  // 0-d and size-1 edge cases.
  Tensor s = scalar_tensor(5, kFloat64);
  CHECK(s.view({1, 1}).shape() == Shape{1, 1});
  CHECK(s.reshape({1}).storage() == s.storage());
  CHECK(s.unsqueeze(0).shape() == Shape{1});
  CHECK(s.squeeze().shape() == Shape{});
  CHECK(s.flatten().shape() == Shape{1});
  CHECK(s.expand({2, 3}).strides() == Strides{0, 0});
  CHECK(x.narrow(0, 0, 1).view({3, 4}).storage() == x.storage());
  CHECK(zeros({0, 3}).view({3, 0}).shape() == Shape{3, 0});
  CHECK(zeros({0, 3}).view({-1, 6}).shape() == Shape{0, 6});
}

TEST_CASE("writes through a view reach the base") {
  Tensor x = zeros({3, 4}, kFloat64);
  x.narrow(1, 1, 2).fill_(1);               // columns 1, 2
  x.t().select(0, 3).fill_(2);              // column 3 via the transpose
  x.slice(0, 0, 3, 2).select(1, 0).fill_(3);  // rows 0 and 2 of column 0
  x.unsqueeze(0).expand({5, 3, 4}).select(0, 4).select(0, 1).narrow(0, 0, 1).fill_(4);  // [1, 0]
  check_ref(x, {3, 4}, {3, 1, 1, 2, 4, 1, 1, 2, 3, 1, 1, 2}, 0, 0, "after writes");
  // copy_ into a strided view; the source broadcasts.
  Tensor y = zeros({2, 6}, kFloat64);
  y.slice(1, 1, 6, 2).copy_(from_vector<double>({7, 8, 9}));
  check_ref(y, {2, 6}, {0, 7, 0, 8, 0, 9, 0, 7, 0, 8, 0, 9}, 0, 0, "copy_ into a strided view");
  // A view of a tensor saved for backward shares its version counter: writing through the
  // view is caught at backward time.
  Tensor a = from_vector<double>({1, 2, 3}).requires_grad_();
  Tensor ea = exp(a);  // saves its output
  Tensor loss = sum(ea);
  {
    autograd::NoGradGuard ng;
    ea.narrow(0, 0, 1).fill_(0);
  }
  check_error([&] { loss.backward(); }, "modified in place");
  autograd::clear_tape();
}

TEST_CASE("reshape views when it can and copies when it must") {
  Tensor x = iota({2, 3, 4});
  Tensor t = x.transpose(0, 2);  // [4, 3, 2]
  CHECK(!t.is_contiguous());
  // Not viewable: view() refuses, reshape() copies (new storage, same values).
  check_error([&] { t.view({24}); }, "view: a tensor of shape [4, 3, 2] with strides [1, 4, 12] cannot be viewed as [24] without a copy; use reshape()");
  Tensor r = t.reshape({24});
  CHECK(r.storage() != x.storage());
  CHECK(r.is_contiguous());
  check_ref(r, {24}, values(t), 0, 0, "reshape copy");
  Tensor f = t.flatten();
  CHECK(f.storage() != x.storage());
  check_ref(f, {24}, values(t), 0, 0, "flatten copy");
  // Viewable non-contiguous reshapes share storage.
  CHECK(t.reshape({4, 3, 2, 1}).storage() == x.storage());
  CHECK(t.reshape({4, 3, 1, 2}).storage() == x.storage());
  Tensor n = x.narrow(2, 0, 3);  // [2, 3, 3]
  CHECK(n.reshape({6, 3}).storage() == x.storage());
  Tensor nc = n.reshape({18});  // rows of 3 out of 4: a copy
  CHECK(nc.storage() != x.storage());
  check_ref(nc, {18}, values(n), 0, 0, "reshape of a narrowed tensor");
  Tensor st = x.slice(2, 0, 4, 2);  // [2, 3, 2], strides (12, 4, 2): every other element
  Tensor stv = st.reshape({12});     // a uniform stride of 2: still a view
  CHECK(stv.storage() == x.storage());
  CHECK(stv.strides() == Strides{2});
  check_ref(stv, {12}, values(st), 0, 0, "reshape of a stepped slice (view)");
  Tensor sr = x.slice(1, 0, 3, 2);  // [2, 2, 4], strides (12, 8, 1): rows 0 and 2
  CHECK(sr.reshape({2, 2, 2, 2}).storage() == x.storage());
  CHECK(sr.reshape({4, 4}).storage() != x.storage());
  Tensor src = sr.reshape({16});
  CHECK(src.storage() != x.storage());
  check_ref(src, {16}, values(sr), 0, 0, "reshape of a stepped slice (copy)");
  Tensor ex = x.select(2, 0).unsqueeze(2).expand({2, 3, 4});
  Tensor exc = ex.reshape({24});
  CHECK(exc.storage() != x.storage());
  check_ref(exc, {24}, values(ex), 0, 0, "reshape of an expanded tensor");
  // contiguous() returns the tensor itself when it is contiguous, a copy otherwise.
  CHECK(x.contiguous().is_same(x));
  Tensor tc = t.contiguous();
  CHECK(tc.storage() != x.storage());
  CHECK(tc.is_contiguous());
  check_ref(tc, {4, 3, 2}, values(t), 0, 0, "contiguous");
  // clone always copies.
  Tensor c = x.clone();
  CHECK(c.storage() != x.storage());
  check_ref(c, {2, 3, 4}, values(x), 0, 0, "clone");
  check_ref(t.clone(), {4, 3, 2}, values(t), 0, 0, "clone of a transpose");
}

TEST_CASE("view ops: bad arguments") {
  Tensor x = iota({2, 3, 4});
  check_error([&] { x.view({-1, -1}); }, "view: only one extent can be -1, got [-1, -1]");
  check_error([&] { x.view({5, -1}); }, "view: cannot view [2, 3, 4] as [5, -1]");
  check_error([&] { x.view({5, 5}); }, "view: cannot view [2, 3, 4] (24 elements) as [5, 5] (25 elements)");
  check_error([&] { x.reshape({-2, 12}); }, "reshape: invalid extent");
  check_error([&] { x.reshape({0, -1}); }, "reshape: cannot view");
  check_error([&] { x.permute({0, 1}); }, "permute: 2 dims given for a tensor of shape [2, 3, 4]");
  check_error([&] { x.permute({0, 1, -2}); }, "permute: dim 1 repeated");
  check_error([&] { x.permute({0, 1, 3}); }, "permute: dim 3 out of range");
  check_error([&] { x.transpose(0, 3); }, "transpose: dim 3 out of range");
  check_error([&] { x.t(); }, "t: expected a 2-d tensor, got shape [2, 3, 4]");
  check_error([&] { x.narrow(1, 2, 2); }, "narrow: [2, 4) is out of range for dim 1 of shape [2, 3, 4]");
  check_error([&] { x.narrow(1, 0, -1); }, "narrow");
  check_error([&] { x.narrow(5, 0, 1); }, "narrow: dim 5 out of range");
  check_error([&] { x.slice(2, 0, 4, 0); }, "slice: step must be positive, got 0");
  check_error([&] { x.slice(2, 0, 4, -1); }, "slice: step must be positive");
  check_error([&] { x.select(1, 3); }, "select: index 3 out of range for dim 1 of shape [2, 3, 4]");
  check_error([&] { x.select(1, -4); }, "select: index -4 out of range");
  check_error([&] { x.unsqueeze(4); }, "unsqueeze: dim 4 out of range");
  check_error([&] { x.squeeze(3); }, "squeeze: dim 3 out of range");
  check_error([&] { x.expand({3, 4}); }, "expand: cannot expand shape [2, 3, 4] to fewer dims [3, 4]");
  check_error([&] { x.expand({2, 6, 4}); }, "expand: cannot expand shape [2, 3, 4] to [2, 6, 4]");
  check_error([&] { x.expand({-1, 2, 3, 4}); }, "expand: extent -1 not allowed for a new dim");
  check_error([&] { x.narrow(1, 0, 1).expand({2, -2, 4}); }, "expand: invalid extent -2");
  check_error([&] { x.flatten(2, 1); }, "flatten: start_dim 2 after end_dim 1");
  Tensor s = scalar_tensor(1);
  check_error([&] { s.slice(0, 0, 1); }, "slice: cannot slice a 0-d tensor");
  check_error([&] { s.narrow(0, 0, 1); }, "narrow: cannot narrow a 0-d tensor");
  check_error([&] { s.select(0, 0); }, "select: cannot select from a 0-d tensor");
  check_error([&] { Tensor().view({1}); }, "undefined");
}

TEST_CASE("gradients through every view op (gradcheck)") {
  Tensor x = leaf({2, 3, 4}, 1);
  using F = std::function<Tensor(const Tensor&)>;
  std::vector<std::pair<std::string, F>> fs = {
      {"view", [](const Tensor& t) { return t.view({4, -1}); }},
      {"reshape (view)", [](const Tensor& t) { return t.reshape({6, 4}); }},
      {"reshape (copy)", [](const Tensor& t) { return t.transpose(0, 1).reshape({24}); }},
      {"permute", [](const Tensor& t) { return t.permute({2, 0, 1}); }},
      {"transpose", [](const Tensor& t) { return t.transpose(-1, 0); }},
      {"t", [](const Tensor& t) { return t.select(0, 1).t(); }},
      {"narrow", [](const Tensor& t) { return t.narrow(2, 1, 2); }},
      {"narrow empty", [](const Tensor& t) { return t.narrow(2, 1, 0); }},
      {"slice step", [](const Tensor& t) { return t.slice(2, 1, 4, 2); }},
      {"slice step 3 negative start", [](const Tensor& t) { return t.slice(-1, -4, 4, 3); }},
      {"select", [](const Tensor& t) { return t.select(1, -1); }},
      {"unsqueeze", [](const Tensor& t) { return t.unsqueeze(1); }},
      {"squeeze(dim)", [](const Tensor& t) { return t.narrow(1, 1, 1).squeeze(1); }},
      {"squeeze()", [](const Tensor& t) { return t.narrow(0, 1, 1).narrow(2, 0, 1).squeeze(); }},
      {"expand", [](const Tensor& t) { return t.unsqueeze(0).expand({3, 2, 3, 4}); }},
      {"expand stride 0", [](const Tensor& t) { return t.narrow(1, 0, 1).expand({2, 5, 4}); }},
      {"flatten", [](const Tensor& t) { return t.flatten(1); }},
      {"contiguous", [](const Tensor& t) { return t.transpose(0, 2).contiguous(); }},
      {"clone", [](const Tensor& t) { return t.clone(); }},
      {"select to 0-d", [](const Tensor& t) { return t.select(0, 1).select(0, 2).select(0, 3); }},
      // Chains, views of views (gradients must come back through each step to the base).
      {"chain permute/slice/reshape/unsqueeze/expand",
       [](const Tensor& t) {
         return t.permute({2, 0, 1}).slice(0, 1, 4, 2).reshape({2, 6}).unsqueeze(0).expand({3, 2, 6});
       }},
      {"chain transpose/narrow/flatten/select",
       [](const Tensor& t) { return t.transpose(0, 1).narrow(0, 1, 2).flatten(1).select(0, 1); }},
      {"view of a view of a view", [](const Tensor& t) { return t.view({6, 4}).view({6, 2, 2}).view({12, 2}); }},
      {"two overlapping views summed",
       [](const Tensor& t) { return add(t.narrow(2, 0, 3), t.narrow(2, 1, 3).transpose(0, 1).transpose(0, 1)); }},
      {"a view used twice", [](const Tensor& t) {
         Tensor v = t.slice(1, 0, 3, 2);
         return mul(v, exp(v.transpose(0, 2).contiguous().transpose(0, 2)));
       }},
      {"elementwise on a view, then a view of the result",
       [](const Tensor& t) { return tanh(t.permute({1, 2, 0})).narrow(0, 1, 2).reshape({-1}); }},
  };
  for (const auto& [name, f] : fs) {
    CAPTURE(name);
    check_gradcheck([&](const In& in) { return f(in[0]); }, {x});
  }
}

TEST_CASE("view gradients have the input's shape and land in the right places") {
  // narrow/slice/select scatter into zeros; expand sums over the broadcast dims.
  Tensor x = zeros({3, 4}, kFloat64).requires_grad_();
  sum(x.slice(1, 1, 4, 2)).backward();
  check_ref(x.grad(), {3, 4}, {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1}, 0, 0, "slice");
  x.zero_grad();
  sum(mul(x.select(0, -1), from_vector<double>({1, 2, 3, 4}))).backward();
  check_ref(x.grad(), {3, 4}, {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 0, 0, "select");
  x.zero_grad();
  Tensor c = x.narrow(1, 3, 1);  // [3, 1]
  sum(c.expand({2, 3, 5})).backward();
  check_ref(x.grad(), {3, 4}, {0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0, 10}, 0, 0, "narrow + expand");
  x.zero_grad();
  // Overlapping views: gradients accumulate on the base.
  sum(add(x.narrow(1, 0, 3), x.narrow(1, 1, 3))).backward();
  check_ref(x.grad(), {3, 4}, {1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1}, 0, 0, "overlapping narrows");
  x.zero_grad();
  // A permuted upstream gradient is mapped back through the inverse permutation.
  Tensor y = iota({2, 3, 4}).requires_grad_();
  Tensor p = y.permute({1, 2, 0});  // [3, 4, 2]
  p.backward(iota({3, 4, 2}));
  std::vector<double> want(24);
  for (int64_t i = 0; i < 24; ++i) {
    auto v = unravel(i, {2, 3, 4});            // y index (a, b, c)
    want[i] = static_cast<double>((v[1] * 4 + v[2]) * 2 + v[0]);  // p index (b, c, a)
  }
  check_ref(y.grad(), {2, 3, 4}, want, 0, 0, "permute");
  // A leaf's gradient owns its memory even when backward produced an expanded view.
  Tensor z = zeros({3}, kFloat64).requires_grad_();
  sum(z.unsqueeze(0).expand({4, 3})).backward();
  CHECK(z.grad().is_contiguous());
  check_ref(z.grad(), {3}, {4, 4, 4}, 0, 0, "expand");
  // float32 too.
  Tensor w = zeros({2, 3}, kFloat32).requires_grad_();
  sum(w.t().reshape({6}).narrow(0, 1, 4)).backward();  // w.t() flattened: w00 w10 w01 w11 w02 w12
  check_ref(w.grad(), {2, 3}, {0, 1, 1, 1, 1, 0}, 0, 0, "float32 transpose/reshape/narrow");
}

TEST_CASE("copies: clone, contiguous, to(dtype) with gradients") {
  Tensor x = leaf({3, 4}, 2);
  check_gradcheck([](const In& in) { return in[0].clone(); }, {x});
  check_gradcheck([](const In& in) { return in[0].t().contiguous(); }, {x});
  check_gradcheck([](const In& in) { return in[0].t().clone().t(); }, {x});
  // to(dtype): the gradient comes back in the input's dtype. f is linear, so a large step keeps
  // the float32 rounding out of the finite difference.
  GradcheckOptions o;
  o.eps = 1e-2;
  o.atol = 1e-4;
  check_gradcheck([](const In& in) { return mul(in[0].to(kFloat32), 3.0).to(kFloat64); }, {x}, o);
  Tensor a = from_vector<double>({1, 2, 3}).requires_grad_();
  Tensor af = a.to(kFloat32);
  CHECK(af.dtype() == kFloat32);
  CHECK(af.requires_grad());
  sum(mul(af, from_vector<float>({1, 2, 3}))).backward();
  REQUIRE(a.grad().defined());
  CHECK(a.grad().dtype() == kFloat64);
  check_ref(a.grad(), {3}, {1, 2, 3}, 0, 0, "to(float32) gradient");
  CHECK(a.to(kFloat64).is_same(a));  // no conversion: the tensor itself
  // Conversion to a non-float dtype is not recorded.
  CHECK(!a.to(kInt64).requires_grad());
  // clone is recorded; a clone of a leaf is not a leaf and does not share storage.
  Tensor c = a.clone();
  CHECK(c.requires_grad());
  CHECK(!c.is_leaf());
  CHECK(c.storage() != a.storage());
  autograd::clear_tape();
}
