// tests/test_autograd.cpp: the tape: gradients, accumulation, grad mode, detach, in-place
// detection, errors, gradcheck itself, and that memory stays flat over training steps.
#include "helpers.h"

using namespace aft;
using namespace aft::test;

TEST_CASE("backward through a small expression") {
  Tensor x = from_vector<double>({1, 2, 3}).requires_grad_();
  Tensor w = from_vector<double>({0.5, -1, 2}).requires_grad_();
  Tensor y = sum(mul(exp(x), w));  // dy/dx = exp(x) * w, dy/dw = exp(x)
  CHECK(!y.is_leaf());
  y.backward();
  check_values(x.grad(), {std::exp(1.0) * 0.5, -std::exp(2.0), std::exp(3.0) * 2}, 1e-12);
  check_values(w.grad(), {std::exp(1.0), std::exp(2.0), std::exp(3.0)}, 1e-12);
  CHECK(autograd::tape_size() == 0);
}

TEST_CASE("a tensor used twice gets the sum of both gradients") {
  Tensor x = from_vector<double>({3}).requires_grad_();
  Tensor y = mul(x, x) + x;  // 2x + 1
  y.backward();
  check_values(x.grad(), {7});
  // Gradients accumulate across backward calls until zero_grad.
  Tensor y2 = mul(x, 2.0);
  y2.backward();
  check_values(x.grad(), {9});
  x.zero_grad();
  CHECK(!x.grad().defined());
}

TEST_CASE("broadcasting gradients are summed back") {
  Tensor a = leaf({2, 3}, 1), b = leaf({3}, 2);
  Tensor y = sum(mul(a, b));
  y.backward();
  CHECK(b.grad().shape() == Shape{3});
  check_close(b.grad(), sum(a.detach(), {0}), 1e-12, 1e-12);
}

TEST_CASE("grad mode, detach, leaves") {
  Tensor x = leaf({3}, 3);
  {
    autograd::NoGradGuard ng;
    Tensor y = exp(x);
    CHECK(!y.requires_grad());
    CHECK(autograd::tape_size() == 0);
  }
  Tensor d = x.detach();
  CHECK(!d.requires_grad());
  CHECK(d.storage() == x.storage());
  Tensor y = exp(d);
  CHECK(!y.requires_grad());
  check_error([&] { y.backward(); }, "does not require grad");
  Tensor z = exp(x);
  check_error([&] { z.backward(); }, "non-scalar");
  z.backward(ones({3}, kFloat64));
  check_close(x.grad(), exp(x.detach()), 1e-12);
  check_error([] { zeros({2}, kInt64).requires_grad_(); }, "only float");
}

TEST_CASE("non-leaf gradients only with retain_grad") {
  Tensor x = leaf({2}, 4);
  Tensor h = mul(x, 3.0);
  h.retain_grad();
  Tensor h2 = mul(x, 2.0);
  sum(mul(h, h) + h2).backward();
  check_close(h.grad(), mul(h.detach(), 2.0), 1e-12);
  CHECK(!h2.grad().defined());
}

TEST_CASE("a second backward through a consumed graph is an error") {
  Tensor x = leaf({2}, 5);
  Tensor h = exp(x);
  Tensor y = sum(h);
  y.backward();
  check_error([&] { y.backward(); }, "already");
  Tensor y2 = sum(mul(h, 2.0));  // h's graph is consumed
  check_error([&] { y2.backward(); }, "detach()");
  Tensor y3 = sum(mul(h.detach(), x));  // fine with detach
  y3.backward();
}

TEST_CASE("an in-place change of a saved tensor is reported") {
  Tensor x = leaf({3}, 6);
  Tensor w = ones({3}, kFloat64);
  Tensor y = sum(mul(x, w));  // saves w for x's gradient
  w.fill_(2.0);
  check_error([&] { y.backward(); }, "modified in place");
  autograd::clear_tape();
  check_error([&] { x.fill_(1.0); }, "requires grad");
}

TEST_CASE("gradcheck catches a wrong gradient") {
  Tensor x = leaf({4}, 7);
  check_gradcheck([](const std::vector<Tensor>& in) { return exp(in[0]); }, {x});
  // A deliberately wrong backward: forward x*x, gradient recorded as x (instead of 2x).
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor v = in[0];
    Tensor out;
    {
      autograd::NoGradGuard ng;
      out = mul(v, v);
    }
    if (autograd::needs_grad(v)) {
      autograd::SavedTensor s(v);
      autograd::record("wrong_square", {v}, {out}, [s](const autograd::TensorList& g) {
        return autograd::TensorList{mul(g[0], s.get())};
      });
    }
    return out;
  };
  GradcheckResult r = gradcheck(wrong, {x});
  CHECK(!r.ok);
  CHECK(r.worst.find("input 0") != std::string::npos);
}

TEST_CASE("the tape and host memory stay flat over training steps") {
  Generator g(11);
  Tensor w = mul(randn({64, 32}, kFloat32, &g), 0.1).detach().requires_grad_();
  Tensor x = randn({16, 64}, kFloat32, &g);
  MemoryStats after_first{};
  for (int step = 0; step < 50; ++step) {
    // A loop body with views, broadcasts and reductions; dropped intermediate results too.
    Tensor h = tanh(sum(mul(x.unsqueeze(2), w.unsqueeze(0)), {1}));
    Tensor unused = exp(h);  // recorded, never reaches backward, dropped at end of scope
    Tensor loss = mean(mul(h, h));
    loss.backward();
    {
      autograd::NoGradGuard ng;
      w.copy_(sub(w, mul(w.grad(), 0.1)));
    }
    w.zero_grad();
    // Here: this step's `unused` is alive (its node too); the previous one's node was swept.
    CHECK(autograd::tape_size() == 1);
    MemoryStats now = cpu_memory_stats();
    if (step == 1) after_first = now;
    if (step > 1) {
      CHECK(now.in_use == after_first.in_use);
      CHECK(now.allocations == after_first.allocations);
    }
  }
  CHECK(autograd::tape_size() <= 1);  // the last `unused` died: node marked, memory freed
}

TEST_CASE("nodes whose outputs died are swept from the tape") {
  Tensor x = leaf({4}, 8);
  for (int i = 0; i < 5000; ++i) {
    Tensor y = exp(x);  // never differentiated
  }
  CHECK(autograd::tape_size() < 2100);
  Tensor keep = exp(x);
  for (int i = 0; i < 3000; ++i) {
    Tensor y = exp(x);
  }
  sum(keep).backward();  // still differentiable after sweeps
  check_close(x.grad(), exp(x.detach()), 1e-12);
}
