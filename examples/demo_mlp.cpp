// examples/demo_mlp.cpp: the smallest end-to-end training run: a two-layer MLP learns to
// classify points of three interleaved spirals, trained with plain SGD through the tape.
// It needs no data (the spirals are generated) and prints the loss falling.
//
//   demo_mlp [--steps N] [--lr X] [--hidden H] [--seed S] [--threads N]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "aft.h"

using namespace aft;

namespace {

// N points per class on 3 spiral arms in 2-D, with a little noise. x: [3N, 2], y: [3N].
void make_spirals(int64_t n, Generator& gen, Tensor* x, Tensor* y) {
  std::vector<float> xs;
  std::vector<int64_t> ys;
  std::vector<float> noise = randn({3 * n * 2}, kFloat32, &gen).to_vector<float>();
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < n; ++i) {
      float r = static_cast<float>(i) / static_cast<float>(n);
      float t = 4.0f * c + 4.0f * r;
      size_t k = static_cast<size_t>(2 * (c * n + i));
      xs.push_back(r * std::sin(t) + 0.05f * noise[k]);
      xs.push_back(r * std::cos(t) + 0.05f * noise[k + 1]);
      ys.push_back(c);
    }
  }
  *x = from_vector<float>(xs, {3 * n, 2});
  *y = from_vector<int64_t>(ys, {3 * n});
}

int usage(int code) {
  std::printf(
      "demo_mlp: trains a 2-layer MLP (tanh) on a generated 3-spiral problem with SGD.\n"
      "  --steps N     training steps (default 600)\n"
      "  --lr X        learning rate (default 0.5)\n"
      "  --hidden H    hidden width (default 64)\n"
      "  --seed S      random seed (default 1)\n"
      "  --threads N   CPU threads (default: AFT_NUM_THREADS or all cores)\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 600, hidden = 64;
  double lr = 0.5;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "demo_mlp: %s needs a value\n", name);
        std::exit(usage(2));
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return usage(0);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(next("--steps"));
    else if (!std::strcmp(argv[i], "--lr")) lr = std::atof(next("--lr"));
    else if (!std::strcmp(argv[i], "--hidden")) hidden = std::atoi(next("--hidden"));
    else if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(next("--seed"), nullptr, 10);
    else if (!std::strcmp(argv[i], "--threads")) set_num_threads(std::atoi(next("--threads")));
    else {
      std::fprintf(stderr, "demo_mlp: unknown argument '%s'\n", argv[i]);
      return usage(2);
    }
  }
  if (steps < 1 || hidden < 1 || !(lr > 0)) {
    std::fprintf(stderr, "demo_mlp: need --steps >= 1, --hidden >= 1, --lr > 0\n");
    return 2;
  }
  Generator gen(seed);
  Tensor x, y;
  make_spirals(200, gen, &x, &y);
  // Parameters: W1 [2, H], b1 [H], W2 [H, 3], b2 [3]; scaled normal initialisation.
  Tensor w1 = mul(randn({2, hidden}, kFloat32, &gen), 1.0).detach().requires_grad_();
  Tensor b1 = zeros({hidden}, TensorOptions().with_requires_grad());
  Tensor w2 = mul(randn({hidden, 3}, kFloat32, &gen), 1.0 / std::sqrt(hidden)).detach().requires_grad_();
  Tensor b2 = zeros({3}, TensorOptions().with_requires_grad());
  std::vector<Tensor> params = {w1, b1, w2, b2};

  std::printf("demo_mlp: 3-spiral classification, %lld points, MLP 2-%d-3, SGD lr %g, %d threads\n",
              static_cast<long long>(x.size(0)), hidden, lr, num_threads());
  for (int step = 0; step <= steps; ++step) {
    Tensor h = tanh(add(matmul(x, w1), b1));
    Tensor logits = add(matmul(h, w2), b2);
    Tensor loss = cross_entropy(logits, y);
    if (step % (steps / 10 > 0 ? steps / 10 : 1) == 0 || step == steps) {
      autograd::NoGradGuard ng;
      double acc = mean(eq(max(logits, 1).indices, y).to(kFloat32)).item();
      std::printf("step %4d  loss %.4f  accuracy %.3f\n", step, loss.item(), acc);
    }
    if (step == steps) break;
    loss.backward();
    autograd::NoGradGuard ng;
    for (Tensor& p : params) {
      p.copy_(sub(p, mul(p.grad(), lr)));
      p.zero_grad();
    }
  }
  return 0;
}
