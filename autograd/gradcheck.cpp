// autograd/gradcheck.cpp: analytic versus central-difference gradients (see gradcheck.h).
#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/tape.h"
#include "core/format.h"
#include "core/random.h"
#include "ops/ops.h"

namespace aft {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, GradcheckOptions opts) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    AFT_CHECK(t.defined() && t.is_cpu(), "gradcheck: input {} must be a defined CPU tensor", i);
    AFT_CHECK(t.dtype() == kFloat64 || !t.requires_grad(),
              "gradcheck: input {} requires grad, so it must be float64 (got {})", i, t.dtype());
    AFT_CHECK(t.is_leaf(), "gradcheck: input {} must be a leaf tensor", i);
  }
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach().clone();  // fresh leaves: earlier gradients do not leak in
    if (t.requires_grad()) c.requires_grad_();
    xs.push_back(c);
  }
  Tensor y0 = f(xs);
  AFT_CHECK(y0.defined() && is_floating(y0.dtype()), "gradcheck: f must return a float tensor");
  Generator gen(1234);
  Tensor proj = randn(y0.shape(), kFloat64, &gen);
  auto scalar = [&](const std::vector<Tensor>& in) {
    autograd::NoGradGuard ng;
    return sum(mul(f(in).to(kFloat64), proj)).item<double>();
  };
  Tensor loss = sum(mul(y0.to(kFloat64), proj));
  if (loss.requires_grad()) loss.backward();

  GradcheckResult res;
  double worst_excess = -1;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) continue;
    Tensor g = xs[i].grad();
    std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(static_cast<size_t>(xs[i].numel()), 0.0);
    // Perturb a dense copy in place, element by element.
    Tensor base = xs[i].detach().contiguous().clone();
    double* p = base.data<double>();
    std::vector<Tensor> in;
    for (size_t j = 0; j < xs.size(); ++j) in.push_back(j == i ? base : xs[j].detach());
    for (int64_t e = 0; e < base.numel(); ++e) {
      double orig = p[e];
      p[e] = orig + opts.eps;
      double lp = scalar(in);
      p[e] = orig - opts.eps;
      double lm = scalar(in);
      p[e] = orig;
      double numeric = (lp - lm) / (2 * opts.eps);
      double a = analytic[static_cast<size_t>(e)];
      double abs_err = std::fabs(a - numeric);
      double rel_err = abs_err / std::max(std::fabs(numeric), 1e-12);
      res.max_abs_error = std::max(res.max_abs_error, abs_err);
      res.max_rel_error = std::max(res.max_rel_error, std::min(rel_err, abs_err / 1e-12));
      double excess = abs_err - (opts.atol + opts.rtol * std::fabs(numeric));
      if (excess > worst_excess) {
        worst_excess = excess;
        res.worst = fmt::format("input {} {}, element {}: analytic {:.9g} vs numeric {:.9g}", i,
                                xs[i].shape(), e, a, numeric);
      }
      if (excess > 0) res.ok = false;
    }
  }
  return res;
}

}  // namespace aft
