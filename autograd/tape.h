// autograd/tape.h: tape-based reverse-mode automatic differentiation.
//
// What is recorded. While grad mode is on, an op whose inputs include a tensor that requires
// grad appends one Node to the calling thread's tape: the inputs' autograd records, weak
// references to its outputs, the tensors its backward needs (captured by the backward closure
// as SavedTensor), and the backward function itself. Nodes are appended in execution order,
// so the tape is already a topological order: backward() needs no graph search.
//
// What backward() does. loss.backward() seeds d loss/d loss = 1, walks the tape from the
// loss's node down to the first node, calls each node that received a gradient, and adds the
// gradients it returns into the nodes that produced its inputs (or, for leaves, into .grad()).
// Every node it ran is then removed from the tape, which drops the closure and with it the
// saved tensors. Gradients are computed with grad mode off (no double backward).
//
// What the tape holds across training iterations: nothing, in a normal loop. After backward()
// the nodes of that step are gone. Nodes that backward() never reaches (say a forward pass
// whose result was dropped) are removed once no tensor refers to their outputs any more: the
// tape sweeps them when it grows. tests/test_autograd.cpp checks that the tape and the host
// memory stay flat over many training steps.
//
// One tape per thread: a graph is recorded and differentiated on the same thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace aft::autograd {

struct Node;

// Autograd state of one tensor; shared by the tensor and by the nodes that use it as input.
struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  bool released = false;  // its producer was consumed by an earlier backward()
  Node* node = nullptr;   // producer on the tape; nullptr for a leaf
  int output_nr = 0;      // which output of `node`
  Tensor grad;            // accumulated gradient (leaves, and non-leaves with retain_grad)

  // When the last output of a node dies, nothing can send it a gradient any more: its saved
  // tensors are freed at once and the node is marked for the next sweep of the tape.
  ~AutogradMeta();
};

// A tensor kept for backward: a detached alias plus the storage version at save time, so a
// later in-place modification is reported instead of silently giving wrong gradients.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t);  // NOLINT(google-explicit-constructor)
  const Tensor& get() const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

using TensorList = std::vector<Tensor>;
// Receives one gradient per output (undefined for an output that got none) and returns one
// per input (undefined where the input needs none; see Node::needs_input_grad).
using BackwardFn = std::function<TensorList(const TensorList& grad_outputs)>;

struct Node {
  const char* name = "";
  bool dead = false;  // every output is gone; removed at the next sweep
  uint64_t seq = 0;   // position in recording order
  const void* tape = nullptr;
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // nullptr where no grad is needed
  std::vector<Shape> input_shapes;
  std::vector<std::weak_ptr<AutogradMeta>> outputs;
  BackwardFn backward;
  TensorList grad_outputs;  // filled while backward() runs

  bool needs_input_grad(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
};

// ---- grad mode
bool grad_enabled();
void set_grad_enabled(bool on);

class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

// ---- recording (used by ops)
// True when grad mode is on and any defined input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
inline bool needs_grad(const Tensor& a) { return needs_grad({&a}); }
inline bool needs_grad(const Tensor& a, const Tensor& b) { return needs_grad({&a, &b}); }
inline bool needs_grad(const Tensor& a, const Tensor& b, const Tensor& c) {
  return needs_grad({&a, &b, &c});
}

// Appends a node; the outputs become non-leaf tensors that require grad. Call only when
// needs_grad(inputs) is true. Returns the node so the caller can read needs_input_grad(i).
Node* record(const char* name, const TensorList& inputs, const TensorList& outputs, BackwardFn fn);

// Runs backward from `root` with the given upstream gradient (ones for a 1-element root when
// undefined). Same as root.backward(gradient).
void backward(const Tensor& root, const Tensor& gradient = Tensor());

// Number of nodes currently on this thread's tape (for tests and debugging).
size_t tape_size();
// Drops every node of this thread's tape (their outputs can no longer be differentiated).
void clear_tape();

}  // namespace aft::autograd
