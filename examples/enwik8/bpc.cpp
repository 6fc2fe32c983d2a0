// examples/enwik8/bpc.cpp: evaluation in bits per character and sampling (see bpc.h).
#include "bpc.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../common/program.h"
#include "autograd/tape.h"
#include "core/format.h"
#include "ops/ops.h"

namespace aft::enwik8 {

using examples::now_s;

BpcResult bits_per_char(const std::function<Tensor(const Tensor&)>& forward, int64_t context,
                        std::span<const uint8_t> bytes, Device device, BpcOptions opt) {
  autograd::NoGradGuard ng;
  const double t0 = now_s();
  int64_t n = static_cast<int64_t>(bytes.size());
  if (opt.max_bytes > 0) n = std::min(n, opt.max_bytes);
  AFT_CHECK(n >= 2, "bits_per_char: need at least 2 bytes, got {}", n);
  const int64_t T = std::min(context, n - 1);
  const int64_t stride = std::clamp<int64_t>(opt.stride > 0 ? opt.stride : context / 2, 1, T);
  // Windows: (start, first target offset within the window to score). Targets are bytes 1..n-1.
  struct Win {
    int64_t start, from;
  };
  std::vector<Win> wins;
  int64_t scored = 0;  // targets 1..scored are done
  for (int64_t s = 0; scored < n - 1; s += stride) {
    s = std::min(s, n - 1 - T);
    // Window inputs [s, s+T), targets [s+1, s+T]: score those beyond `scored`.
    wins.push_back({s, std::max<int64_t>(0, scored - s)});
    scored = s + T;
  }
  BpcResult r;
  const int64_t B = std::max<int64_t>(1, opt.batch);
  double last_report = t0;
  for (size_t w0 = 0; w0 < wins.size(); w0 += static_cast<size_t>(B)) {
    const int64_t nb = std::min<int64_t>(B, static_cast<int64_t>(wins.size() - w0));
    std::vector<int64_t> x(static_cast<size_t>(nb * T)), y(static_cast<size_t>(nb * T));
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t t = 0; t < T; ++t) {
        x[b * T + t] = bytes[wins[w0 + b].start + t];
        y[b * T + t] = bytes[wins[w0 + b].start + t + 1];
      }
    Tensor logits = forward(from_vector<int64_t>(x, {nb, T}).to(device));
    Tensor nll = cross_entropy(logits.reshape({nb * T, logits.size(2)}), from_vector<int64_t>(y, {nb * T}).to(device),
                               -100, 0.0, Reduction::None);
    std::vector<double> v = nll.to_vector<double>();
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t t = wins[w0 + b].from; t < T; ++t) {
        r.nats += v[b * T + t];
        ++r.count;
      }
    if (opt.progress && now_s() - last_report > 2) {
      last_report = now_s();
      std::fprintf(stderr, "\r  scored %lld of %lld bytes, bpc so far %.4f", (long long)r.count, (long long)(n - 1),
                   r.nats / r.count / std::log(2.0));
    }
  }
  if (opt.progress) std::fprintf(stderr, "\n");
  AFT_ASSERT(r.count == n - 1);
  r.bpc = r.nats / static_cast<double>(r.count) / std::log(2.0);
  r.seconds = now_s() - t0;
  return r;
}

BpcResult bits_per_char(const nn::AFTLM& model, std::span<const uint8_t> bytes, Device device, BpcOptions opt) {
  return bits_per_char([&](const Tensor& x) { return model.forward(x); }, model.config().context, bytes, device, opt);
}

SampleStats sample(const nn::AFTLM& model, const std::string& prompt, int64_t length, double temperature,
                   int64_t top_k, Device device, Generator& gen, std::FILE* out) {
  autograd::NoGradGuard ng;
  AFT_CHECK(length >= 0, "sample: length must be >= 0");
  const double t0 = now_s();
  const int64_t ctx = model.config().context;
  std::vector<int64_t> text(prompt.begin(), prompt.end());
  for (auto& c : text) c = static_cast<uint8_t>(c);
  if (text.empty()) text.push_back('\n');
  std::fwrite(prompt.data(), 1, prompt.size(), out);
  nn::AFTLM::Decoder dec;
  Tensor logits;
  auto feed = [&](int64_t byte) {
    logits = model.forward_step(from_vector<int64_t>({byte}, {1}).to(device), dec);
  };
  auto restart = [&] {
    dec = nn::AFTLM::Decoder();
    int64_t keep = std::min<int64_t>(ctx / 2, static_cast<int64_t>(text.size()));
    for (size_t i = text.size() - static_cast<size_t>(keep); i < text.size(); ++i) feed(text[i]);
  };
  // The prompt (its last context − 1 bytes at most).
  size_t first = text.size() > static_cast<size_t>(ctx - 1) ? text.size() - static_cast<size_t>(ctx - 1) : 0;
  for (size_t i = first; i < text.size(); ++i) feed(text[i]);
  SampleStats st;
  for (int64_t i = 0; i < length; ++i) {
    int next = sample_logits(logits.reshape({-1}).to_vector<double>(), temperature, top_k, gen);
    text.push_back(next);
    std::fputc(next, out);
    std::fflush(out);
    ++st.generated;
    if (dec.t >= ctx) restart();
    else feed(next);
  }
  st.seconds = now_s() - t0;
  return st;
}

}  // namespace aft::enwik8
