// nn/module.h: Module, the base of every layer and model.
//
// A module owns named parameters (tensors that require grad), buffers (state that is saved but
// not trained) and child modules. Names compose with dots, so a model's parameters are
// "blocks.3.attn.qkv.weight" and so on, the names used by state_dict() and checkpoints.
// Each parameter also has a kind (weight, bias, norm, embedding, position bias), which the
// optimizers use to decide what gets weight decay.
//
// Modules are held by std::shared_ptr (make one with std::make_shared<Linear>(...)). Each
// module class has its own forward(...) with the inputs it needs.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace aft::nn {

enum class ParamKind { Weight, Bias, Norm, Embedding, PositionBias };
const char* param_kind_name(ParamKind k);

struct NamedParam {
  std::string name;
  Tensor tensor;
  ParamKind kind;
};

// An ordered list of name -> tensor, as saved in checkpoints.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // ---- traversal (recursive, in registration order)
  std::vector<NamedParam> named_parameters() const;
  std::vector<Tensor> parameters() const;
  StateDict named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  int64_t num_parameters() const;

  // ---- mode and placement
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves (or converts) every parameter and buffer; handles held elsewhere follow, because
  // the tensors keep their identity (Tensor::set_data).
  void to(Device device);
  void to(DType dtype);

  // ---- state
  // Parameters then buffers, by full name.
  StateDict state_dict() const;
  // Copies values in. Errors name every missing, unexpected and mis-shaped entry; with
  // strict = false, missing and unexpected names are allowed (shapes must still match).
  // Values are converted to each parameter's dtype and device.
  void load_state_dict(const StateDict& state, bool strict = true);

  void zero_grad();
  // A tree of the modules with their parameter shapes and counts.
  std::string describe() const;

 protected:
  // Registers t (made a leaf that requires grad) and returns the same tensor.
  Tensor register_parameter(const std::string& name, const Tensor& t, ParamKind kind = ParamKind::Weight);
  Tensor register_buffer(const std::string& name, const Tensor& t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_name(name);
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void check_name(const std::string& name) const;
  void collect_params(const std::string& prefix, std::vector<NamedParam>* out) const;
  void collect_buffers(const std::string& prefix, StateDict* out) const;
  void describe_into(std::string* out, const std::string& name, int depth) const;

  std::string type_name_;
  std::vector<NamedParam> params_;
  StateDict buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace aft::nn
