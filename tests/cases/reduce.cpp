// tests/cases/reduce.cpp: op cases of the reductions (ops/reduce.cpp): sum, mean, amax, max,
// logsumexp, var over several dim subsets of a 3-d input, keepdim both ways, a non-contiguous
// input and a 0-d one.
#include "../op_cases.h"


using namespace aft;
using namespace aft::test;

namespace {

using Reduce = Tensor (*)(const Tensor&, const std::vector<int64_t>&, bool);

std::string dims_name(const std::vector<int64_t>& dims) {
  if (dims.empty()) return "all";
  std::string s;
  for (int64_t d : dims) {
    if (!s.empty()) s += ',';
    s += std::to_string(d);
  }
  return s;
}

}  // namespace

AFT_OP_CASES(reduce) {
  const std::pair<const char*, Reduce> ops[] = {
      {"sum", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return sum(x, d, k); }},
      {"mean", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return mean(x, d, k); }},
      {"amax", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return amax(x, d, k); }},
      {"logsumexp", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return logsumexp(x, d, k); }},
      {"var", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return var(x, d, k); }},
      {"var_c0", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return var(x, d, k, 0); }},
  };
  const std::vector<std::vector<int64_t>> dimss = {{}, {0}, {-1}, {0, 2}, {1, -1}};
  for (const auto& [name, op] : ops) {
    Reduce f = op;
    for (const auto& dims : dimss) {
      for (bool keepdim : {false, true}) {
        add_case({.name = fmt::format("{}/{}/{}", name, dims_name(dims), keepdim ? "keepdim" : "drop"),
                  .shapes = {{2, 3, 4}},
                  .fn = [f, dims, keepdim](const In& x) { return f(x[0], dims, keepdim); }});
      }
    }
    // Non-contiguous input (permuted, then a stepped slice), and a 0-d input.
    add_case({.name = fmt::format("{}/non-contiguous", name), .shapes = {{4, 2, 6}},
              .fn = [f](const In& x) { return f(x[0].permute({1, 2, 0}).slice(1, 0, 6, 2), {1}, false); }});
    if (std::string(name) != "var")  // var of one element with correction 1 is 0/0
      add_case({.name = fmt::format("{}/0-d", name), .shapes = {{}},
                .fn = [f](const In& x) { return f(x[0], {}, false); }});
  }
  for (int64_t dim : {0, 1, -1}) {
    for (bool keepdim : {false, true}) {
      add_case({.name = fmt::format("max/{}/{}", dim, keepdim ? "keepdim" : "drop"), .shapes = {{2, 3, 4}},
                .fn = [dim, keepdim](const In& x) { return max(x[0], dim, keepdim).values; }});
    }
  }
  add_case({.name = "max/non-contiguous", .shapes = {{4, 3}},
            .fn = [](const In& x) { return max(x[0].t(), 1).values; }});
  // Huge values: logsumexp shifts by the maximum (float32 would overflow e^x otherwise).
  add_case({.name = "logsumexp/huge", .shapes = {{3, 4}},
            .fn = [](const In& x) { return logsumexp(add(x[0], 500.0), {1}); }});
}
