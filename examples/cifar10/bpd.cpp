// examples/cifar10/bpd.cpp: bits per dimension and image sampling (see bpd.h).
#include "bpd.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../common/program.h"
#include "../common/sampling.h"
#include "autograd/tape.h"
#include "core/format.h"
#include "ops/ops.h"

namespace aft::cifar10 {

using examples::now_s;

Tensor intensity_logits(const Tensor& logits) {
  AFT_CHECK(logits.defined() && logits.size(-1) >= 256, "intensity_logits: expected logits [..., >= 256], got {}",
            logits.defined() ? logits.shape() : Shape{});
  return logits.size(-1) == 256 ? logits : logits.narrow(-1, 0, 256);
}

BpdResult bits_per_dim(const std::function<Tensor(const Tensor&)>& forward, const Images& images, Device device,
                       BpdOptions opt) {
  autograd::NoGradGuard ng;
  const double t0 = now_s();
  int64_t N = images.size();
  if (opt.max_images > 0) N = std::min(N, opt.max_images);
  AFT_CHECK(N >= 1, "bits_per_dim: no images to score");
  const int64_t B = std::max<int64_t>(1, opt.batch), T = kDims;
  double channel_nats[3] = {0, 0, 0};
  double last_report = t0;
  BpdResult r;
  for (int64_t i0 = 0; i0 < N; i0 += B) {
    const int64_t nb = std::min(B, N - i0);
    std::span<const uint8_t> imgs(images.image(i0), static_cast<size_t>(nb * T));
    Tensor x = from_vector<int64_t>(shift_right(imgs, nb), {nb, T}).to(device);
    std::vector<int64_t> y(imgs.begin(), imgs.end());
    Tensor logits = intensity_logits(forward(x)).reshape({nb * T, 256});
    Tensor nll = cross_entropy(logits, from_vector<int64_t>(y, {nb * T}).to(device), -100, 0.0, Reduction::None);
    std::vector<double> v = nll.to_vector<double>();
    for (int64_t j = 0; j < nb * T; ++j) channel_nats[j % 3] += v[j];  // T is a multiple of 3
    r.images += nb;
    if (opt.progress && now_s() - last_report > 2) {
      last_report = now_s();
      double so_far = channel_nats[0] + channel_nats[1] + channel_nats[2];
      std::fprintf(stderr, "\r  scored %lld of %lld images, bits/dim so far %.4f", (long long)r.images, (long long)N,
                   so_far / (r.images * T) / std::log(2.0));
    }
  }
  if (opt.progress) std::fprintf(stderr, "\n");
  r.nats = channel_nats[0] + channel_nats[1] + channel_nats[2];
  r.bpd = r.nats / static_cast<double>(r.images * T) / std::log(2.0);
  for (int c = 0; c < 3; ++c) r.channel_bpd[c] = channel_nats[c] / static_cast<double>(r.images * kPixels) / std::log(2.0);
  r.seconds = now_s() - t0;
  return r;
}

BpdResult bits_per_dim(const nn::AFTLM& model, const Images& images, Device device, BpdOptions opt) {
  AFT_CHECK(model.config().context >= kDims && model.config().vocab == kVocab,
            "bits_per_dim: the model must have context >= {} and vocab {} (got {} and {})", kDims, kVocab,
            model.config().context, model.config().vocab);
  return bits_per_dim([&](const Tensor& x) { return model.forward(x); }, images, device, opt);
}

std::vector<uint8_t> generate(const nn::AFTLM& model, std::span<const uint8_t> prefix, int64_t B, int64_t keep,
                              Device device, Generator& gen, SampleOptions opt, SampleStats* stats) {
  autograd::NoGradGuard ng;
  AFT_CHECK(B >= 1 && keep >= 0 && keep <= kDims, "generate: need B >= 1 and keep in [0, {}], got {} and {}", kDims,
            B, keep);
  AFT_CHECK(static_cast<int64_t>(prefix.size()) == B * keep, "generate: prefix holds {} bytes, expected {} x {}",
            prefix.size(), B, keep);
  AFT_CHECK(model.config().context >= kDims && model.config().vocab == kVocab,
            "generate: the model must have context >= {} and vocab {}", kDims, kVocab);
  AFT_CHECK(opt.temperature > 0, "generate: temperature must be > 0, got {}", opt.temperature);
  const double t0 = now_s();
  std::vector<uint8_t> out(static_cast<size_t>(B * kDims));
  for (int64_t b = 0; b < B; ++b) std::copy_n(prefix.data() + b * keep, keep, out.data() + b * kDims);
  nn::AFTLM::Decoder dec;
  std::vector<int64_t> tok(static_cast<size_t>(B), kSOS);  // the input at position t
  double last_report = t0;
  // Step t feeds the input at position t (SOS, then s_{t−1}) and gets the distribution of s_t.
  for (int64_t t = 0; t < kDims; ++t) {
    Tensor logits = model.forward_step(from_vector<int64_t>(tok, {B}).to(device), dec);
    if (t < keep) {  // a given sub-pixel: fed as it is
      for (int64_t b = 0; b < B; ++b) tok[b] = out[b * kDims + t];
    } else {
      std::vector<int64_t> s = sampling::sample_rows(intensity_logits(logits), opt.temperature, opt.top_k, gen);
      for (int64_t b = 0; b < B; ++b) out[b * kDims + t] = static_cast<uint8_t>(tok[b] = s[b]);
    }
    if (opt.progress && now_s() - last_report > 1) {
      last_report = now_s();
      std::fprintf(stderr, "\r  sub-pixel %lld of %lld (%.0f steps/s)", (long long)t + 1, (long long)kDims,
                   (t + 1) / (now_s() - t0));
    }
  }
  if (opt.progress) std::fprintf(stderr, "\n");
  if (stats) *stats = {B, kDims, now_s() - t0};
  return out;
}

}  // namespace aft::cifar10
