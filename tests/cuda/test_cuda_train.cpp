// tests/cuda/test_cuda_train.cpp: training steps of a small AFTLM (nn/aft_lm.h) on CUDA equal the
// same steps on the CPU. Two models are built from the same seed (identical weights), one moved
// with Module::to; each takes forward, cross-entropy, backward and an AdamW step (nn/optim/optim.h)
// on the same batches, for AFT-local and AFT-full with factorised position biases
// (aft_band_bias, and matmul for u·vᵀ). The devices sum in different orders, so they agree to
// float32 rounding:
//   loss:        relative 1e-5;
//   gradients:   normwise per tensor, max|a − b| / max|b| < 1e-4 (some gradients are exactly 0
//                in exact arithmetic, e.g. the bias of k, which cancels in AFT's normalisation:
//                there both devices hold rounding noise);
//   parameters:  relative 1e-4 plus 1e-6 absolute after each step. AdamW runs with eps = 1e-6,
//                so noise-level gradients (≪ eps) move a parameter by ≪ lr = 1e-3 on either
//                device instead of a full ±lr step in a random direction.
//
// The CUDA step must not go through the host: every parameter, gradient and optimizer state is
// a CUDA tensor, and the high-water mark of host tensor memory rises by at most one int64 during
// the step: the index checks of embedding and cross_entropy read back the position of the
// first bad index (8 bytes, one at a time); anything else (a silent copy of data to the host)
// would allocate more. Skipped (exit 77) without a device.
#include "../helpers.h"
#include "nn/aft_lm.h"
#include "nn/optim/optim.h"

using namespace aft;
using namespace aft::test;

int main_guard = (require_cuda_or_skip(), 0);

namespace {

constexpr int64_t kB = 2, kT = 16, kVocab = 256;

nn::AFTLMConfig config(const std::string& variant) {
  nn::AFTLMConfig c;
  c.vocab = kVocab;
  c.context = kT;
  c.dim = 32;
  c.layers = 2;
  c.mlp_hidden = 64;
  c.mixer.variant = variant;
  c.mixer.window = 4;
  c.mixer.bias = {nn::BiasKind::Factorized, 8};
  return c;
}

struct Trainee {
  std::shared_ptr<nn::AFTLM> model;
  std::unique_ptr<nn::AdamW> opt;
  Trainee(const nn::AFTLMConfig& cfg, Device dev) {
    Generator gen(42);  // the same weights on both devices
    model = std::make_shared<nn::AFTLM>(cfg, &gen);
    model->to(dev);
    opt = std::make_unique<nn::AdamW>(nn::make_param_groups(*model, 0.1), nn::AdamWOptions{.lr = 1e-3, .eps = 1e-6});
  }
  // One step on tokens x, targets y [B, T] (on the model's device); returns the loss tensor.
  Tensor step(const Tensor& x, const Tensor& y) {
    opt->zero_grad();
    Tensor logits = model->forward(x);
    Tensor loss = cross_entropy(logits.reshape({kB * kT, kVocab}), y.reshape({kB * kT}));
    loss.backward();
    opt->step();
    return loss.detach();
  }
};

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : t.to_vector<double>()) m = std::max(m, std::fabs(x));
  return m;
}

void check_on_cuda(const Trainee& t) {
  for (const nn::NamedParam& p : t.model->named_parameters()) {
    CAPTURE(p.name);
    CHECK(p.tensor.is_cuda());
    REQUIRE(p.tensor.grad().defined());
    CHECK(p.tensor.grad().is_cuda());
  }
  for (const auto& [name, tensor] : t.opt->state_dict()) {
    CAPTURE(name);
    if (name != "step") CHECK(tensor.is_cuda());
  }
}

}  // namespace

TEST_CASE("AFTLM training steps on CUDA match the CPU") {
  for (const std::string variant : {"local", "full"}) {
    CAPTURE(variant);
    Trainee cpu(config(variant), kCPU), dev(config(variant), Device::cuda());
    Generator data(7);
    for (int step = 0; step < 3; ++step) {
      CAPTURE(step);
      Tensor x = randint(0, kVocab, {kB, kT}, kInt64, &data), y = randint(0, kVocab, {kB, kT}, kInt64, &data);
      Tensor xd = x.cuda(), yd = y.cuda();
      Tensor loss = cpu.step(x, y);

      reset_cpu_peak_memory();
      const int64_t host_before = cpu_memory_stats().in_use;
      Tensor loss_d = dev.step(xd, yd);
      CHECK_MESSAGE(cpu_memory_stats().peak <= host_before + 8, "the CUDA step held up to ",
                    cpu_memory_stats().peak - host_before, " bytes of host tensors");
      REQUIRE(loss_d.is_cuda());
      check_on_cuda(dev);

      CHECK(loss_d.item() == doctest::Approx(loss.item()).epsilon(1e-5));
      const auto pc = cpu.model->named_parameters(), pd = dev.model->named_parameters();
      REQUIRE(pc.size() == pd.size());
      for (size_t i = 0; i < pc.size(); ++i) {
        CAPTURE(pc[i].name);
        REQUIRE(pc[i].name == pd[i].name);
        const Tensor gc = pc[i].tensor.grad(), gd = pd[i].tensor.grad().cpu();
        CHECK_MESSAGE(max_abs(sub(gd, gc)) <= 1e-4 * max_abs(gc), pc[i].name, ": gradients differ by ",
                      max_abs(sub(gd, gc)), ", largest ", max_abs(gc));
        // A step moves a parameter by about lr = 1e-3; the devices agree to far less than that.
        check_close(pd[i].tensor.detach().cpu(), pc[i].tensor.detach(), 1e-4, 1e-6, pc[i].name);
      }
    }
  }
}
