// nn/module.cpp: registration, traversal, placement and state of modules.
#include "nn/module.h"

#include <map>
#include <set>

#include "autograd/tape.h"
#include "core/format.h"
#include "ops/ops.h"

namespace aft::nn {

const char* param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::Weight: return "weight";
    case ParamKind::Bias: return "bias";
    case ParamKind::Norm: return "norm";
    case ParamKind::Embedding: return "embedding";
    case ParamKind::PositionBias: return "position_bias";
  }
  return "?";
}

void Module::check_name(const std::string& name) const {
  AFT_CHECK(!name.empty() && name.find('.') == std::string::npos,
            "{}: invalid name '{}' (non-empty, no dots)", type_name_, name);
  auto taken = [&](const std::string& n) {
    for (auto& p : params_) if (p.name == n) return true;
    for (auto& b : buffers_) if (b.first == n) return true;
    for (auto& c : children_) if (c.first == n) return true;
    return false;
  };
  AFT_CHECK(!taken(name), "{}: name '{}' registered twice", type_name_, name);
}

Tensor Module::register_parameter(const std::string& name, const Tensor& t, ParamKind kind) {
  check_name(name);
  AFT_CHECK(t.defined() && is_floating(t.dtype()), "{}: parameter '{}' must be a float tensor",
            type_name_, name);
  Tensor p = t.is_leaf() ? t : t.detach();
  if (!p.requires_grad()) p.requires_grad_();
  params_.push_back({name, p, kind});
  return p;
}

Tensor Module::register_buffer(const std::string& name, const Tensor& t) {
  check_name(name);
  AFT_CHECK(t.defined(), "{}: buffer '{}' is undefined", type_name_, name);
  buffers_.emplace_back(name, t.detach());
  return buffers_.back().second;
}

void Module::collect_params(const std::string& prefix, std::vector<NamedParam>* out) const {
  for (const NamedParam& p : params_) out->push_back({prefix + p.name, p.tensor, p.kind});
  for (const auto& [name, child] : children_) child->collect_params(prefix + name + ".", out);
}

void Module::collect_buffers(const std::string& prefix, StateDict* out) const {
  for (const auto& [name, t] : buffers_) out->emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

std::vector<NamedParam> Module::named_parameters() const {
  std::vector<NamedParam> out;
  collect_params("", &out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (NamedParam& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

StateDict Module::named_buffers() const {
  StateDict out;
  collect_buffers("", &out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const NamedParam& p : named_parameters()) n += p.tensor.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::to(Device device) {
  autograd::NoGradGuard ng;
  for (const NamedParam& p : named_parameters()) p.tensor.set_data(p.tensor.to(device));
  for (auto& [name, b] : named_buffers()) b.set_data(b.to(device));
}

void Module::to(DType dtype) {
  autograd::NoGradGuard ng;
  for (const NamedParam& p : named_parameters()) p.tensor.set_data(p.tensor.to(dtype));
  for (auto& [name, b] : named_buffers())
    if (is_floating(b.dtype())) b.set_data(b.to(dtype));
}

StateDict Module::state_dict() const {
  StateDict out;
  for (NamedParam& p : named_parameters()) out.emplace_back(p.name, p.tensor.detach());
  for (auto& b : named_buffers()) out.push_back(b);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : state) {
    AFT_CHECK(given.emplace(name, t).second, "load_state_dict: '{}' appears twice", name);
  }
  StateDict mine = state_dict();
  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  for (const auto& [name, t] : mine) {
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (!(it->second.shape() == t.shape()))
      mismatched.push_back(fmt::format("{} (expected {}, got {})", name, t.shape(), it->second.shape()));
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : given)
    if (!used.count(name)) unexpected.push_back(name);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string problems;
  if (!mismatched.empty()) problems += "shape mismatch: " + join(mismatched) + "; ";
  if (strict && !missing.empty()) problems += "missing: " + join(missing) + "; ";
  if (strict && !unexpected.empty()) problems += "unexpected: " + join(unexpected) + "; ";
  AFT_CHECK(problems.empty(), "load_state_dict ({}): {}", type_name_, problems.substr(0, problems.size() - 2));
  autograd::NoGradGuard ng;
  for (auto& [name, t] : mine) {
    auto it = given.find(name);
    if (it == given.end()) continue;
    t.copy_(it->second);  // converts dtype and device
  }
}

void Module::zero_grad() {
  for (const NamedParam& p : named_parameters()) p.tensor.zero_grad();
}

void Module::describe_into(std::string* out, const std::string& name, int depth) const {
  int64_t own = 0;
  for (const NamedParam& p : params_) own += p.tensor.numel();
  std::string pad(static_cast<size_t>(2 * depth), ' ');
  *out += fmt::format("{}{}{}{}", pad, name.empty() ? "" : name + ": ", type_name_,
                      num_parameters() ? fmt::format(" ({} parameters)", num_parameters()) : "");
  *out += "\n";
  for (const NamedParam& p : params_)
    *out += fmt::format("{}  {} {} [{}]\n", pad, p.name, p.tensor.shape(), param_kind_name(p.kind));
  for (const auto& [n, c] : children_) c->describe_into(out, n, depth + 1);
}

std::string Module::describe() const {
  std::string s;
  describe_into(&s, "", 0);
  return s;
}

}  // namespace aft::nn
