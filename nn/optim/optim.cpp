// nn/optim/optim.cpp: parameter groups, the SGD and AdamW optimizers and global-norm gradient
// clipping (semantics in nn/optim/optim.h, element formulas in core/math/optim.h).
//
// A step first collects the work: every parameter with a gradient, as dense tensors (a
// strided parameter or gradient is copied to a dense temporary, the parameter written back
// after), with its group's learning rate and weight decay. CPU parameters are then updated by
// one fused pass over p, g and the state (parallel_for over the elements: each element is
// independent, so any thread count gives the same bits); CUDA parameters are gathered into
// lists of ParamSlot per dtype and updated by the multi-tensor kernels of cuda/optim.cu, all
// groups together, with no synchronisation.
#include "nn/optim/optim.h"

#include <cmath>
#include <map>

#include "autograd/tape.h"
#include "core/format.h"
#include "core/parallel.h"
#include "core/math/optim.h"
#include "cuda/optim.h"
#include "ops/op_utils.h"

namespace aft::nn {

using optim_math::ParamSlot;

namespace {

// Elements per task of the CPU loops (they are memory-bound: a few flops per 16-32 bytes).
constexpr int64_t kGrain = 16384;

using Buffers = std::vector<std::vector<Tensor>>;  // per group, per parameter

// One parameter a step updates.
struct Work {
  Tensor param;   // the parameter itself
  Tensor p;       // param, or a dense copy of it (written back after the update)
  Tensor g;       // its gradient, dense
  Tensor s1, s2;  // its state buffers (AdamW: m, v; SGD: the momentum buffer), dense, or undefined
  size_t group, index;
  double lr, wd;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// The state buffer of w (zero at first use; moved to the parameter's device and dtype if the
// parameter was moved since).
Tensor& state_for(const char* who, Buffers& bufs, const Work& w, const std::string& name) {
  Tensor& s = bufs[w.group][w.index];
  const Tensor& p = w.p;
  if (!s.defined()) {
    s = zeros(p.shape(), TensorOptions(p.dtype(), p.device()));
  } else if (s.device() != p.device() || s.dtype() != p.dtype() || !s.is_contiguous()) {
    s = s.to(p.device()).to(p.dtype()).contiguous();
  }
  AFT_CHECK(s.shape() == p.shape(), "{}: state of '{}' has shape {} but the parameter now has {}",
            who, name, s.shape(), p.shape());
  return s;
}

// Every parameter with a gradient, with its state buffers from `state` (up to two kinds, made
// ready by state_for). Everything is checked here, before any parameter changes.
std::vector<Work> collect_work(const char* who, const std::vector<ParamGroup>& groups, double lr,
                               double default_wd, const std::vector<Buffers*>& state) {
  AFT_CHECK(std::isfinite(lr) && lr >= 0, "{}: the learning rate must be finite and >= 0, got {}",
            who, lr);
  std::vector<Work> work;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ParamGroup& grp = groups[gi];
    const double glr = lr * grp.lr_scale, wd = grp.weight_decay.value_or(default_wd);
    AFT_CHECK(std::isfinite(wd) && wd >= 0,
              "{}: weight decay of group '{}' must be finite and >= 0, got {}", who, grp.name, wd);
    for (size_t i = 0; i < grp.params.size(); ++i) {
      const Tensor& p = grp.params[i];
      AFT_CHECK(p.device() == grp.params[0].device(),
                "{}: parameter group '{}' mixes devices: '{}' is on {} and '{}' on {}", who,
                grp.name, grp.names[0], grp.params[0].device(), grp.names[i], p.device());
      Tensor g = p.grad();
      if (!g.defined()) continue;
      AFT_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
                "{}: gradient {} {} {} of '{}' does not match the parameter {} {} {}", who,
                g.shape(), g.dtype(), g.device(), grp.names[i], p.shape(), p.dtype(), p.device());
      Tensor dense = p.is_contiguous() ? p.detach() : p.detach().contiguous();
      work.push_back({p, dense, g.contiguous(), Tensor(), Tensor(), gi, i, glr, wd});
    }
  }
  for (Work& w : work) {
    const std::string& name = groups[w.group].names[w.index];
    if (state.size() > 0) w.s1 = state_for(who, *state[0], w, name);
    if (state.size() > 1) w.s2 = state_for(who, *state[1], w, name);
  }
  return work;
}

// After the update: copy strided parameters back, mark every parameter as modified.
void finish(const std::vector<Work>& work) {
  autograd::NoGradGuard ng;
  for (const Work& w : work) {
    Tensor param = w.param;
    if (w.p.raw_data() != param.raw_data())
      param.copy_(w.p);  // bumps the version
    else
      param.storage()->bump_version();
  }
}

// Calls launch(dtype, slots, count) (a CUDA launcher) once per dtype present.
template <class F>
void launch_by_dtype(const std::vector<ParamSlot>& f32, const std::vector<ParamSlot>& f64,
                     F&& launch) {
  if (!f32.empty()) launch(kFloat32, f32.data(), static_cast<int>(f32.size()));
  if (!f64.empty()) launch(kFloat64, f64.data(), static_cast<int>(f64.size()));
}

// ---- state_dict / load_state_dict, shared by SGD and AdamW: "step", then for each parameter
// one entry per buffer kind ("<kind>.<param name>").
using BufferKinds = std::vector<std::pair<std::string, Buffers*>>;

StateDict save_state(const std::vector<ParamGroup>& groups, int64_t steps,
                     const std::vector<std::pair<std::string, const Buffers*>>& kinds) {
  StateDict out;
  out.emplace_back("step", from_vector<int64_t>({steps}, Shape{}));
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    for (size_t i = 0; i < groups[gi].params.size(); ++i) {
      const Tensor& p = groups[gi].params[i];
      for (const auto& [kind, bufs] : kinds) {
        const Tensor& s = (*bufs)[gi][i];
        out.emplace_back(
            kind + "." + groups[gi].names[i],
            s.defined() ? s.detach() : zeros(p.shape(), TensorOptions(p.dtype(), p.device())));
      }
    }
  }
  return out;
}

// Checks everything first (nothing changes on an error), then copies; returns the step.
int64_t load_state(const char* who, const StateDict& state, const std::vector<ParamGroup>& groups,
                   const BufferKinds& kinds) {
  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : state) {
    AFT_CHECK(t.defined(), "{}.load_state_dict: entry '{}' is an undefined tensor", who, name);
    AFT_CHECK(given.emplace(name, t).second, "{}.load_state_dict: '{}' appears twice", who, name);
  }
  std::vector<std::string> missing, mismatched, unexpected;
  std::map<std::string, int> used;
  int64_t step = 0;
  auto it = given.find("step");
  if (it == given.end()) {
    missing.push_back("step");
  } else {
    used["step"] = 1;
    const Tensor& t = it->second;
    if (t.dtype() != kInt64 || t.ndim() != 0)
      mismatched.push_back(
          fmt::format("step (expected a 0-d int64 tensor, got {} {})", t.dtype(), t.shape()));
    else if ((step = t.item<int64_t>()) < 0)
      mismatched.push_back(fmt::format("step (negative: {})", step));
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    for (size_t i = 0; i < groups[gi].params.size(); ++i) {
      for (const auto& [kind, bufs] : kinds) {
        const std::string name = kind + "." + groups[gi].names[i];
        auto e = given.find(name);
        if (e == given.end()) {
          missing.push_back(name);
          continue;
        }
        used[name] = 1;
        const Tensor& t = e->second;
        const Shape& want = groups[gi].params[i].shape();
        if (!(t.shape() == want))
          mismatched.push_back(fmt::format("{} (expected {}, got {})", name, want, t.shape()));
        else if (!is_floating(t.dtype()))
          mismatched.push_back(
              fmt::format("{} (expected a float tensor, got {})", name, t.dtype()));
      }
    }
  }
  for (const auto& [name, t] : given)
    if (!used.count(name)) unexpected.push_back(name);
  std::string problems;
  if (!missing.empty()) problems += "missing: " + join(missing) + "; ";
  if (!unexpected.empty()) problems += "unexpected: " + join(unexpected) + "; ";
  if (!mismatched.empty()) problems += "mismatched: " + join(mismatched) + "; ";
  AFT_CHECK(problems.empty(), "{}.load_state_dict: {}", who,
            problems.substr(0, problems.size() - 2));

  autograd::NoGradGuard ng;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    for (size_t i = 0; i < groups[gi].params.size(); ++i) {
      const Tensor& p = groups[gi].params[i];
      for (const auto& [kind, bufs] : kinds) {
        const Tensor& src = given.at(kind + "." + groups[gi].names[i]);
        Tensor& s = (*bufs)[gi][i];
        if (!s.defined() || s.device() != p.device() || s.dtype() != p.dtype() ||
            !s.is_contiguous())
          s = zeros(p.shape(), TensorOptions(p.dtype(), p.device()));
        if (src.raw_data() != s.raw_data()) s.copy_(src);  // converts dtype and device
      }
    }
  }
  return step;
}

void check_sgd_options(const SGDOptions& o) {
  AFT_CHECK(std::isfinite(o.momentum) && o.momentum >= 0,
            "SGD: momentum must be finite and >= 0, got {}", o.momentum);
  AFT_CHECK(!o.nesterov || o.momentum > 0, "SGD: Nesterov momentum needs momentum > 0");
  AFT_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
            "SGD: weight_decay must be finite and >= 0, got {}", o.weight_decay);
}

void check_adamw_options(const AdamWOptions& o) {
  AFT_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1,
            "AdamW: betas must be in [0, 1), got ({}, {})", o.beta1, o.beta2);
  AFT_CHECK(std::isfinite(o.eps) && o.eps >= 0, "AdamW: eps must be finite and >= 0, got {}",
            o.eps);
  AFT_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
            "AdamW: weight_decay must be finite and >= 0, got {}", o.weight_decay);
}

}  // namespace

// ---- parameter groups

std::vector<ParamGroup> make_param_groups(const Module& model, double weight_decay,
                                          const std::set<ParamKind>& no_decay) {
  ParamGroup decay, plain;
  decay.name = "decay";
  decay.weight_decay = weight_decay;
  plain.name = "no_decay";
  plain.weight_decay = 0.0;
  for (const NamedParam& p : model.named_parameters()) {
    ParamGroup& g = no_decay.count(p.kind) ? plain : decay;
    g.names.push_back(p.name);
    g.params.push_back(p.tensor);
  }
  return {decay, plain};
}

std::vector<ParamGroup> single_group(const Module& model, std::optional<double> weight_decay) {
  ParamGroup all;
  all.name = "all";
  all.weight_decay = weight_decay;
  for (const NamedParam& p : model.named_parameters()) {
    all.names.push_back(p.name);
    all.params.push_back(p.tensor);
  }
  return {all};
}

// ---- Optimizer

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr)
    : groups_(std::move(groups)), lr_(lr) {
  std::map<std::string, std::string> names;       // parameter name -> group
  std::map<const TensorImpl*, std::string> seen;  // parameter -> its name
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    if (g.name.empty()) g.name = fmt::format("group{}", gi);
    if (g.names.empty())
      for (size_t i = 0; i < g.params.size(); ++i)
        g.names.push_back(fmt::format("{}.{}", g.name, i));
    AFT_CHECK(g.names.size() == g.params.size(),
              "optimizer: group '{}' has {} names for {} parameters", g.name, g.names.size(),
              g.params.size());
    AFT_CHECK(std::isfinite(g.lr_scale) && g.lr_scale >= 0,
              "optimizer: lr_scale of group '{}' must be finite and >= 0, got {}", g.name,
              g.lr_scale);
    for (size_t i = 0; i < g.params.size(); ++i) {
      const Tensor& p = g.params[i];
      AFT_CHECK(p.defined() && is_floating(p.dtype()),
                "optimizer: parameter '{}' of group '{}' must be a float tensor", g.names[i],
                g.name);
      auto [n, fresh] = names.emplace(g.names[i], g.name);
      AFT_CHECK(fresh, "optimizer: parameter name '{}' appears twice (groups '{}' and '{}')",
                g.names[i], n->second, g.name);
      auto [s, new_param] = seen.emplace(p.impl(), g.names[i]);
      AFT_CHECK(new_param, "optimizer: parameter '{}' is the same tensor as '{}'", g.names[i],
                s->second);
    }
  }
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

// ---- SGD

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions opts)
    : Optimizer(std::move(groups), opts.lr), options(opts) {
  check_sgd_options(options);
  for (const ParamGroup& g : groups_) momentum_.emplace_back(g.params.size());
}

void SGD::step() {
  check_sgd_options(options);
  std::vector<Buffers*> state;
  if (options.momentum != 0) state.push_back(&momentum_);
  std::vector<Work> work = collect_work("SGD", groups_, lr_, options.weight_decay, state);
  ++steps_;
  std::vector<ParamSlot> f32, f64;
  for (const Work& w : work) {
    const Tensor& buf = w.s1;
    if (w.p.is_cuda()) {
      ParamSlot s{w.p.raw_data(),
                  w.g.raw_data(),
                  buf.defined() ? buf.raw_data() : nullptr,
                  nullptr,
                  w.p.numel(),
                  w.wd,
                  w.lr};
      (w.p.dtype() == kFloat32 ? f32 : f64).push_back(s);
      continue;
    }
    dispatch_float(w.p.dtype(), "SGD", [&]<class T>() {
      T* p = w.p.data<T>();
      const T* g = w.g.data<T>();
      T* v = buf.defined() ? buf.data<T>() : nullptr;
      const T wd = static_cast<T>(w.wd), lr = static_cast<T>(w.lr),
              mu = static_cast<T>(options.momentum);
      const bool nesterov = options.nesterov;
      parallel_for(0, w.p.numel(), kGrain, [=](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          optim_math::sgd_update(p[i], g[i], v ? v + i : nullptr, wd, lr, mu, nesterov);
      });
    });
  }
  launch_by_dtype(f32, f64, [&](DType dt, const ParamSlot* s, int n) {
    AFT_CUDA_CALL(cuda::sgd_step(dt, s, n, options.momentum, options.nesterov));
  });
  finish(work);
}

StateDict SGD::state_dict() const {
  if (options.momentum == 0) return save_state(groups_, steps_, {});
  return save_state(groups_, steps_, {{"momentum", &momentum_}});
}

void SGD::load_state_dict(const StateDict& state) {
  BufferKinds kinds;
  if (options.momentum != 0) kinds.emplace_back("momentum", &momentum_);
  steps_ = load_state("SGD", state, groups_, kinds);
}

// ---- AdamW

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions opts)
    : Optimizer(std::move(groups), opts.lr), options(opts) {
  check_adamw_options(options);
  for (const ParamGroup& g : groups_) {
    exp_avg_.emplace_back(g.params.size());
    exp_avg_sq_.emplace_back(g.params.size());
  }
}

void AdamW::step() {
  check_adamw_options(options);
  std::vector<Work> work =
      collect_work("AdamW", groups_, lr_, options.weight_decay, {&exp_avg_, &exp_avg_sq_});
  ++steps_;
  const double t = static_cast<double>(steps_);
  const double bc1 = 1.0 - std::pow(options.beta1, t),
               bc2_sqrt = std::sqrt(1.0 - std::pow(options.beta2, t));
  std::vector<ParamSlot> f32, f64;
  for (const Work& w : work) {
    const Tensor &m = w.s1, &v = w.s2;
    const double decay = 1.0 - w.lr * w.wd, step_size = w.lr / bc1;
    if (w.p.is_cuda()) {
      ParamSlot s{w.p.raw_data(), w.g.raw_data(), m.raw_data(), v.raw_data(),
                  w.p.numel(),    decay,          step_size};
      (w.p.dtype() == kFloat32 ? f32 : f64).push_back(s);
      continue;
    }
    dispatch_float(w.p.dtype(), "AdamW", [&]<class T>() {
      const optim_math::AdamWCoef<T> c{
          static_cast<T>(decay),         static_cast<T>(step_size),
          static_cast<T>(options.beta1), static_cast<T>(1.0 - options.beta1),
          static_cast<T>(options.beta2), static_cast<T>(1.0 - options.beta2),
          static_cast<T>(bc2_sqrt),      static_cast<T>(options.eps)};
      T* p = w.p.data<T>();
      const T* g = w.g.data<T>();
      T* mp = m.data<T>();
      T* vp = v.data<T>();
      parallel_for(0, w.p.numel(), kGrain, [=](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) optim_math::adamw_update(p[i], g[i], mp[i], vp[i], c);
      });
    });
  }
  launch_by_dtype(f32, f64, [&](DType dt, const ParamSlot* s, int n) {
    AFT_CUDA_CALL(cuda::adamw_step(dt, s, n, options.beta1, options.beta2, options.eps, bc2_sqrt));
  });
  finish(work);
}

StateDict AdamW::state_dict() const {
  return save_state(groups_, steps_, {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}});
}

void AdamW::load_state_dict(const StateDict& state) {
  steps_ =
      load_state("AdamW", state, groups_, {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}});
}

// ---- clip_grad_norm

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  AFT_CHECK(std::isfinite(max_norm) && max_norm > 0,
            "clip_grad_norm: max_norm must be finite and > 0, got {}", max_norm);
  std::vector<Tensor> host, dev;
  std::map<const TensorImpl*, int> seen;  // a gradient shared by two parameters counts once
  for (const Tensor& p : params) {
    check_defined("clip_grad_norm", p, "parameter");
    Tensor g = p.grad();
    if (!g.defined() || !seen.emplace(g.impl(), 1).second) continue;
    if (!g.is_contiguous()) {
      g = g.contiguous();
      p.set_grad(g);
    }
    if (g.is_cpu()) {
      host.push_back(g);
    } else {
      AFT_CHECK(dev.empty() || dev[0].device() == g.device(),
                "clip_grad_norm: gradients on several CUDA devices ({} and {}) are not supported",
                dev[0].device(), g.device());
      dev.push_back(g);
    }
  }

  // CPU: sums of g² over fixed chunks of kChunk elements, in parallel, then added in order.
  struct Chunk {
    const Tensor* g;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (const Tensor& g : host)
    for (int64_t b = 0; b < g.numel(); b += optim_math::kChunk)
      chunks.push_back({&g, b, std::min(g.numel(), b + optim_math::kChunk)});
  std::vector<double> partial(chunks.size());
  parallel_for(0, static_cast<int64_t>(chunks.size()), 2, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const Chunk& ch = chunks[c];
      dispatch_float(ch.g->dtype(), "clip_grad_norm", [&]<class T>() {
        // Eight running sums (element i goes to sum i mod 8), added pairwise at the end: a
        // fixed order the compiler can keep in vector registers.
        const T* x = ch.g->data<T>();
        double acc[8] = {};
        int64_t i = ch.begin;
        for (; i + 8 <= ch.end; i += 8)
          for (int j = 0; j < 8; ++j)
            acc[j] += static_cast<double>(x[i + j]) * static_cast<double>(x[i + j]);
        for (; i < ch.end; ++i) acc[i % 8] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
        partial[c] =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      });
    }
  });
  double sq = 0;
  for (double s : partial) sq += s;

  // CUDA: one launch of per-chunk partial sums per 48 tensors and dtype, one final reduction.
  std::vector<ParamSlot> f32, f64;
  int64_t dev_chunks = 0;
  for (const Tensor& g : dev) {
    (g.dtype() == kFloat32 ? f32 : f64)
        .push_back({g.raw_data(), g.raw_data(), nullptr, nullptr, g.numel(), 0, 0});
    dev_chunks += optim_math::chunks_of(g.numel());
  }
  if (!dev.empty()) {
    Tensor partials =
        empty({std::max<int64_t>(dev_chunks, 1)}, TensorOptions(kFloat64, dev[0].device()));
    Tensor total = empty({1}, TensorOptions(kFloat64, dev[0].device()));
    [[maybe_unused]] double* out = partials.data<double>();
    int64_t f32_chunks = 0;
    for (const ParamSlot& s : f32) f32_chunks += optim_math::chunks_of(s.n);
    launch_by_dtype(f32, f64, [&](DType dt, const ParamSlot* s, int n) {
      AFT_CUDA_CALL(cuda::grad_sq_norm_partials(dt, s, n, dt == kFloat32 ? out : out + f32_chunks));
    });
    AFT_CUDA_CALL(cuda::sum_partials(out, dev_chunks, total.data<double>()));
    sq += total.item<double>();  // the one host synchronisation
  }

  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm)) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  parallel_for(0, static_cast<int64_t>(chunks.size()), 2, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const Chunk& ch = chunks[c];
      dispatch_float(ch.g->dtype(), "clip_grad_norm", [&]<class T>() {
        T* x = ch.g->data<T>();
        const T k = static_cast<T>(coef);
        for (int64_t i = ch.begin; i < ch.end; ++i) x[i] = x[i] * k;
      });
    }
  });
  launch_by_dtype(f32, f64, [&](DType dt, const ParamSlot* s, int n) {
    AFT_CUDA_CALL(cuda::scale_grads(dt, s, n, coef));
  });
  for (const Tensor& g : host) g.storage()->bump_version();
  for (const Tensor& g : dev) g.storage()->bump_version();
  return norm;
}

}  // namespace aft::nn
