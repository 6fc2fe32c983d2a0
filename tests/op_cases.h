// tests/op_cases.h: the registry of op test cases, after ggml's test-backend-ops.
//
// A case names an op, how to make its inputs, and how to call it. One registration makes the
// op part of every generic check:
//   tests/test_op_cases.cpp       gradcheck (float64, central differences) of every case, and
//                                 float32 against float64 forward;
//   tests/cuda/test_op_parity.cpp the same case on the CUDA device (real GPU or the SIMT
//                                 emulator) against the CPU, forward and backward.
// Register cases in a file of tests/cases/ (compiled into both binaries):
//
//   AFT_OP_CASES(unary) {
//     add_case({.name = "exp", .shapes = {{3, 5}}, .fn = [](const In& x) { return exp(x[0]); }});
//   }
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "aft.h"

namespace aft::test {

using In = std::vector<Tensor>;

struct OpCase {
  std::string name;  // unique, e.g. "add/broadcast"
  // Input shapes for the default maker: N(0, 1) values (times `scale`) of the requested dtype.
  std::vector<Shape> shapes;
  // The op under test. Its inputs are on the device and of the dtype being tested.
  std::function<Tensor(const In&)> fn;
  // Custom inputs (e.g. positive values for log, int64 indices): given dtype, device and a seed.
  // When set, `shapes` is ignored. Inputs of a non-float dtype are never differentiated.
  std::function<In(DType, Device, uint64_t)> make;
  double scale = 1.0;
  // Inputs (by position) whose gradient is not checked, e.g. a mask or a non-smooth point.
  std::vector<int> no_grad = {};
  // Relative tolerance of float32 (CPU or CUDA) against the float64 CPU result.
  double f32_rtol = 1e-4;
  double f32_atol = 1e-5;
  bool gradcheck = true;  // false for ops without a gradient (comparisons)
  // No flag says whether the op runs on CUDA: the parity test asks the op itself, which throws
  // aft::NotImplementedError where it has no kernel (reported as unsupported, by name).
};

std::vector<OpCase>& op_cases();
void add_case(OpCase c);

// Builds the inputs of case c for a dtype/device; float inputs get requires_grad when
// `grad` is true and they are not listed in no_grad.
In make_inputs(const OpCase& c, DType dt, Device dev, uint64_t seed, bool grad);

struct CaseRegistrar {
  explicit CaseRegistrar(void (*fn)()) { fn(); }
};

}  // namespace aft::test

#define AFT_OP_CASES(group)                                                      \
  static void aft_register_cases_##group();                                      \
  static ::aft::test::CaseRegistrar aft_case_registrar_##group(&aft_register_cases_##group); \
  static void aft_register_cases_##group()
