// autograd/tape.cpp: the tape, the backward walk, and the autograd methods of Tensor.
#include "autograd/tape.h"

#include <algorithm>

#include "core/format.h"
#include "ops/ops.h"

namespace aft::autograd {
namespace {

struct Tape {
  std::vector<std::unique_ptr<Node>> nodes;  // in recording order (seq increasing)
  uint64_t next_seq = 0;
  size_t sweep_at = 1024;
  size_t dead = 0;  // nodes marked dead since the last sweep

  ~Tape() { clear(); }

  // Detaches every live output from its node, then drops the nodes.
  void clear() {
    for (auto& n : nodes) {
      for (auto& w : n->outputs) {
        if (auto m = w.lock()) {
          m->node = nullptr;
          m->released = true;
        }
      }
    }
    nodes.clear();
    dead = 0;
  }

  // Removes nodes that no live tensor can send a gradient to: all their outputs are gone.
  // Walking from the end frees later nodes first, which may release the inputs of earlier
  // ones, so one pass finds every dead node.
  void sweep() {
    for (size_t i = nodes.size(); i-- > 0;) {
      Node* n = nodes[i].get();
      bool alive = std::any_of(n->outputs.begin(), n->outputs.end(),
                               [](const std::weak_ptr<AutogradMeta>& w) { return !w.expired(); });
      if (!alive) nodes[i].reset();
    }
    compact();
    dead = 0;
    sweep_at = std::max<size_t>(1024, 2 * nodes.size());
  }

  // Sweeps when dead nodes are many (amortised O(1) per recorded node).
  void maybe_sweep() {
    if (nodes.size() >= sweep_at || (dead > 64 && 2 * dead > nodes.size())) sweep();
  }

  void compact() {
    nodes.erase(std::remove(nodes.begin(), nodes.end(), nullptr), nodes.end());
  }
};

thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;

AutogradMeta* meta_of(const Tensor& t) {
  return t.defined() ? t.impl()->autograd.get() : nullptr;
}

// Adds g into a gradient slot. A leaf's .grad() must own its memory (optimizers update it in
// place), so g is taken over only when nothing else refers to it, else copied.
void accumulate(Tensor& slot, Tensor g, bool must_own) {
  if (slot.defined()) {
    slot = add(slot, g);
    return;
  }
  bool unique = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous();
  slot = (must_own && !unique) ? g.clone() : std::move(g);
}

[[noreturn]] void consumed_error(const Shape& shape) {
  AFT_ERROR(
      "backward: a tensor of shape {} comes from a graph that an earlier backward() already "
      "consumed (its saved tensors are freed); call detach() on it to use it as a constant",
      shape);
}

}  // namespace

AutogradMeta::~AutogradMeta() {
  if (node == nullptr || node->dead || node->tape != &t_tape) return;
  for (auto& w : node->outputs)
    if (!w.expired()) return;
  node->dead = true;
  node->backward = nullptr;  // frees the saved tensors now
  ++t_tape.dead;
}

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  t_ = t.detach();
  version_ = t.storage()->version();
}

const Tensor& SavedTensor::get() const {
  if (t_.defined()) {
    uint64_t now = t_.storage()->version();
    AFT_CHECK(now == version_,
              "a tensor of shape {} saved for backward was modified in place afterwards "
              "(version {} -> {}); clone() it before the in-place op",
              t_.shape(), version_, now);
  }
  return t_;
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs) {
    AutogradMeta* m = t ? meta_of(*t) : nullptr;
    if (m && m->requires_grad) return true;
  }
  return false;
}

Node* record(const char* name, const TensorList& inputs, const TensorList& outputs, BackwardFn fn) {
  Tape& tape = t_tape;
  tape.maybe_sweep();
  auto node = std::make_unique<Node>();
  node->name = name;
  node->seq = tape.next_seq++;
  node->tape = &tape;
  node->backward = std::move(fn);
  node->inputs.reserve(inputs.size());
  node->input_shapes.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    AutogradMeta* m = meta_of(in);
    node->inputs.push_back(m && m->requires_grad ? in.impl()->autograd : nullptr);
    node->input_shapes.push_back(in.defined() ? in.shape() : Shape());
  }
  node->outputs.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    AFT_ASSERT(out.defined() && out.impl()->autograd == nullptr);
    auto m = std::make_shared<AutogradMeta>();
    m->requires_grad = true;
    m->node = node.get();
    m->output_nr = static_cast<int>(i);
    out.impl()->autograd = m;
    node->outputs.push_back(m);
  }
  tape.nodes.push_back(std::move(node));
  return tape.nodes.back().get();
}

void backward(const Tensor& root, const Tensor& gradient) {
  AFT_CHECK(root.defined(), "backward: called on an undefined tensor");
  AutogradMeta* rm = meta_of(root);
  AFT_CHECK(rm && rm->requires_grad,
            "backward: the tensor of shape {} does not require grad (no input of the "
            "computation had requires_grad, or it ran under NoGradGuard)",
            root.shape());
  Tensor seed = gradient;
  if (!seed.defined()) {
    AFT_CHECK(root.numel() == 1,
              "backward: a gradient must be given for a non-scalar output of shape {}", root.shape());
    seed = ones_like(root);
  } else {
    AFT_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() &&
                  seed.device() == root.device(),
              "backward: gradient {} {} {} does not match the output {} {} {}", seed.shape(),
              seed.dtype(), seed.device(), root.shape(), root.dtype(), root.device());
  }
  NoGradGuard no_grad;
  if (rm->node == nullptr) {
    if (rm->released) consumed_error(root.shape());
    accumulate(rm->grad, seed.detach(), true);
    return;
  }
  Tape& tape = t_tape;
  Node* start = rm->node;
  AFT_CHECK(start->tape == &tape, "backward: the graph was recorded on another thread");
  auto it = std::lower_bound(tape.nodes.begin(), tape.nodes.end(), start->seq,
                             [](const std::unique_ptr<Node>& n, uint64_t s) { return n->seq < s; });
  AFT_ASSERT(it != tape.nodes.end() && it->get() == start);
  size_t pos = static_cast<size_t>(it - tape.nodes.begin());

  start->grad_outputs.resize(start->outputs.size());
  if (rm->retains_grad) accumulate(rm->grad, seed, true);
  start->grad_outputs[rm->output_nr] = seed.detach();

  std::vector<size_t> ran;
  try {
    for (size_t i = pos + 1; i-- > 0;) {
      Node* n = tape.nodes[i].get();
      if (n->grad_outputs.empty()) continue;
      TensorList grads;
      try {
        grads = n->backward(n->grad_outputs);
      } catch (const Error& e) {
        AFT_ERROR("backward of {}: {}", n->name, e.what());
      }
      n->grad_outputs.clear();
      AFT_ASSERT(grads.size() == n->inputs.size());
      for (size_t j = 0; j < grads.size(); ++j) {
        AutogradMeta* m = n->inputs[j].get();
        if (!m || !grads[j].defined()) continue;
        AFT_CHECK(grads[j].shape() == n->input_shapes[j],
                  "backward of {}: gradient of shape {} for input {} of shape {}", n->name,
                  grads[j].shape(), j, n->input_shapes[j]);
        if (m->node == nullptr) {
          if (m->released) consumed_error(n->input_shapes[j]);
          accumulate(m->grad, std::move(grads[j]), true);
          continue;
        }
        AFT_CHECK(m->node->tape == &tape, "backward: the graph was recorded on another thread");
        if (m->retains_grad) accumulate(m->grad, grads[j], true);
        TensorList& slot = m->node->grad_outputs;
        if (slot.empty()) slot.resize(m->node->outputs.size());
        accumulate(slot[m->output_nr], std::move(grads[j]), false);
      }
      n->backward = nullptr;  // frees the saved tensors now
      ran.push_back(i);
    }
  } catch (...) {
    for (size_t i = 0; i <= pos && i < tape.nodes.size(); ++i) tape.nodes[i]->grad_outputs.clear();
    throw;
  }
  // The nodes that ran are consumed: their outputs can no longer be differentiated through.
  for (size_t i : ran) {
    for (auto& w : tape.nodes[i]->outputs) {
      if (auto m = w.lock()) {
        m->node = nullptr;
        m->released = true;
      }
    }
    tape.nodes[i].reset();
  }
  tape.compact();
  if (tape.dead > 0) tape.sweep();
}

size_t tape_size() { return t_tape.nodes.size(); }

void clear_tape() { t_tape.clear(); }

}  // namespace aft::autograd

// ---- Tensor's autograd methods
namespace aft {

using autograd::AutogradMeta;

bool Tensor::requires_grad() const {
  auto& m = checked()->autograd;
  return m && m->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
  auto& m = checked()->autograd;
  if (on) {
    AFT_CHECK(is_floating(dtype()), "requires_grad_: only float tensors can require grad, got {}",
              dtype());
    if (!m) m = std::make_shared<AutogradMeta>();
    m->requires_grad = true;
  } else {
    AFT_CHECK(!m || (m->node == nullptr && !m->released),
              "requires_grad_(false): only a leaf can stop requiring grad; use detach()");
    m.reset();
  }
  return *this;
}

bool Tensor::is_leaf() const {
  auto& m = checked()->autograd;
  return !m || (m->node == nullptr && !m->released);
}

Tensor Tensor::grad() const {
  auto& m = checked()->autograd;
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) const {
  auto& m = checked()->autograd;
  AFT_CHECK(m && m->requires_grad, "set_grad: tensor of shape {} does not require grad", shape());
  AFT_CHECK(!g.defined() || (g.shape() == shape() && g.dtype() == dtype() && g.device() == device()),
            "set_grad: gradient {} {} {} does not match the tensor {} {} {}", g.shape(), g.dtype(),
            g.device(), shape(), dtype(), device());
  m->grad = g;
}

void Tensor::zero_grad() const {
  auto& m = checked()->autograd;
  if (m) m->grad = Tensor();
}

Tensor& Tensor::retain_grad() {
  auto& m = checked()->autograd;
  AFT_CHECK(m && m->requires_grad, "retain_grad: tensor of shape {} does not require grad", shape());
  m->retains_grad = true;
  return *this;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>(*checked());
  impl->autograd = nullptr;
  return Tensor(std::move(impl));
}

void Tensor::set_data(const Tensor& src) const {
  TensorImpl* t = checked();
  AFT_CHECK(src.defined(), "set_data: source is an undefined tensor");
  AFT_CHECK(is_leaf(), "set_data: only a leaf tensor can change its data (shape {})", shape());
  auto& m = t->autograd;
  AFT_CHECK(!m || !m->requires_grad || is_floating(src.dtype()),
            "set_data: a tensor that requires grad cannot take {} data", src.dtype());
  TensorImpl* s = src.impl();
  t->storage = s->storage;
  t->shape = s->shape;
  t->strides = s->strides;
  t->offset = s->offset;
  t->dtype = s->dtype;
  if (m) m->grad = Tensor();
}

void Tensor::backward(const Tensor& gradient) const { autograd::backward(*this, gradient); }

}  // namespace aft
