// nn/aft_decode.cpp: incremental (one position at a time) decoding of the causal AFT layers,
// for sampling from autoregressive models without recomputing the prefix.
//
// At position t, with q, k, v the projections of x_t and K, V the cached keys and values:
//   AFTSimple:  fold (k_t, v_t) into the running sums; y = σ(q)·num/den.        O(D)
//   AFTLocal:   fold key t−W (it leaves the window, its bias becomes 0) into the running sums;
//               add the window t' ∈ (t−W, t] with weights e^{K[t'] + w[t, j]} exactly. O(W·D)
//   AFTFull:    every cached key with its own bias w[t, t'].                     O(t·D)
// Window and full sums are combined with the running sums at the larger of their two maxima,
// as in the CPU kernels (ops/aft_*.cpp), so no sum overflows and the denominator is >= 1.
#include <cmath>
#include <limits>

#include "autograd/tape.h"
#include "core/format.h"
#include "nn/aft_layers.h"

namespace aft::nn {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

struct StepQKV {
  Tensor q, k, v;  // [B, D] each
};

StepQKV project_step(const Linear& qkv, const Tensor& x_t, int64_t d) {
  Tensor p = qkv.forward(x_t);
  return {p.narrow(1, 0, d), p.narrow(1, d, d), p.narrow(1, 2 * d, d)};
}

void check_step(const char* layer, const Tensor& x_t, int64_t dim, bool causal, int64_t t, int64_t max_len) {
  AFT_CHECK(causal, "{}: forward_step needs a causal layer", layer);
  AFT_CHECK(!autograd::grad_enabled(), "{}: forward_step runs under NoGradGuard", layer);
  AFT_CHECK(x_t.defined() && x_t.ndim() == 2 && x_t.size(1) == dim,
            "{}: forward_step expects x_t [B, {}], got {}", layer, dim, x_t.defined() ? x_t.shape() : Shape{});
  AFT_CHECK(max_len < 0 || t < max_len, "{}: position {} is past max_len {}", layer, t, max_len);
}

// Running sums start empty: num = den = 0, m = -inf.
void init_running(DecodeState& s, const Tensor& like) {
  if (s.m.defined()) return;
  s.num = zeros_like(like);
  s.den = zeros_like(like);
  s.m = full_like(like, kNegInf);
}

// Folds one key/value [B, D] into the running sums (rescaling them to the new maximum).
void fold(DecodeState& s, const Tensor& k, const Tensor& v) {
  Tensor m2 = maximum(s.m, k);
  Tensor old_scale = exp(sub(s.m, m2)), e = exp(sub(k, m2));
  s.num = add(mul(s.num, old_scale), mul(e, v));
  s.den = add(mul(s.den, old_scale), e);
  s.m = m2;
}

// Keys and values buffers [B, max_len, D], allocated at the first step.
void store_kv(DecodeState& s, const Tensor& k, const Tensor& v, int64_t max_len) {
  if (!s.keys.defined()) {
    int64_t B = k.size(0), D = k.size(1);
    s.keys = zeros({B, max_len, D}, {k.dtype(), k.device()});
    s.values = zeros({B, max_len, D}, {k.dtype(), k.device()});
  }
  s.keys.select(1, s.t).copy_(k);
  s.values.select(1, s.t).copy_(v);
}

// σ(q) · (num·e^{m_r − m} + Σ_j e^{logits_j − m}·V_j) / (den·e^{m_r − m} + Σ_j e^{logits_j − m}),
// logits [B, n, D] = keys + bias, V [B, n, D]; the running part may be absent (m_r undefined).
Tensor combine(const Tensor& q, const Tensor& logits, const Tensor& V, const DecodeState* run) {
  Tensor m = amax(logits, {1});
  if (run) m = maximum(m, run->m);
  Tensor e = exp(sub(logits, m.unsqueeze(1)));
  Tensor num = sum(mul(e, V), {1}), den = sum(e, {1});
  if (run) {
    Tensor scale = exp(sub(run->m, m));  // m_r = -inf gives 0
    num = add(num, mul(run->num, scale));
    den = add(den, mul(run->den, scale));
  }
  return sigmoid_gate(q, div(num, den));
}

}  // namespace

Tensor SequenceMixer::forward_step(const Tensor&, DecodeState&) const {
  AFT_ERROR("{}: incremental decoding is not supported by this layer", type_name());
}

Tensor AFTSimple::forward_step(const Tensor& x_t, DecodeState& s) const {
  check_step("AFTSimple", x_t, dim, causal, s.t, -1);
  StepQKV p = project_step(*qkv, x_t, dim);
  init_running(s, p.k);
  fold(s, p.k, p.v);
  ++s.t;
  return proj->forward(sigmoid_gate(p.q, div(s.num, s.den)));
}

Tensor AFTLocal::forward_step(const Tensor& x_t, DecodeState& s) const {
  check_step("AFTLocal", x_t, dim, causal, s.t, max_len);
  const int64_t t = s.t, W = window;
  StepQKV p = project_step(*qkv, x_t, dim);
  init_running(s, p.k);
  store_kv(s, p.k, p.v, max_len);
  // Key t − W leaves the window now: from here on its bias is 0.
  if (t - W >= 0) fold(s, s.keys.select(1, t - W), s.values.select(1, t - W));
  // The window: keys lo..t, band columns (W−1) − (t − lo) .. W−1 of row t.
  const int64_t lo = std::max<int64_t>(0, t - W + 1), n = t - lo + 1;
  Tensor brow;
  if (bias.kind == BiasKind::Full) {
    brow = band.select(0, t).narrow(0, W - n, n);
  } else {
    brow = matmul(v.narrow(0, lo, n), u.select(0, t));  // u[t]·v[t'] for t' = lo..t
  }
  Tensor logits = add(s.keys.narrow(1, lo, n), brow.reshape({1, n, 1}));
  Tensor y = combine(p.q, logits, s.values.narrow(1, lo, n), &s);
  ++s.t;
  return proj->forward(y);
}

Tensor AFTFull::forward_step(const Tensor& x_t, DecodeState& s) const {
  check_step("AFTFull", x_t, dim, causal, s.t, max_len);
  const int64_t t = s.t, n = t + 1;
  StepQKV p = project_step(*qkv, x_t, dim);
  store_kv(s, p.k, p.v, max_len);
  Tensor brow = bias.kind == BiasKind::Full ? w.select(0, t).narrow(0, 0, n)
                                            : matmul(v.narrow(0, 0, n), u.select(0, t));
  Tensor logits = add(s.keys.narrow(1, 0, n), brow.reshape({1, n, 1}));
  Tensor y = combine(p.q, logits, s.values.narrow(1, 0, n), nullptr);
  ++s.t;
  return proj->forward(y);
}

Tensor AFTBlock::forward_step(const Tensor& x_t, DecodeState& state) const {
  Tensor h = add(x_t, mixer->forward_step(ln1->forward(x_t), state));
  return add(h, mlp->forward(ln2->forward(h)));
}

}  // namespace aft::nn
