// tests/cases/views.cpp: op cases of the view ops and copies (ops/views.cpp, ops/copy.cpp):
// each view op alone, chains of them and views of views, whose backward (scatter into zeros,
// sums over expanded dims) goes through copies and reductions.
#include "../op_cases.h"


using namespace aft;
using namespace aft::test;

AFT_OP_CASES(views) {
  const std::pair<const char*, Tensor (*)(const Tensor&)> views[] = {
      {"view", [](const Tensor& t) { return t.view({4, -1}); }},
      {"reshape/view", [](const Tensor& t) { return t.reshape({6, 4}); }},
      {"reshape/copy", [](const Tensor& t) { return t.transpose(0, 1).reshape({24}); }},
      {"permute", [](const Tensor& t) { return t.permute({2, 0, 1}); }},
      {"transpose", [](const Tensor& t) { return t.transpose(-1, 0); }},
      {"t", [](const Tensor& t) { return t.select(0, 1).t(); }},
      {"narrow", [](const Tensor& t) { return t.narrow(2, 1, 2); }},
      {"slice/step", [](const Tensor& t) { return t.slice(2, 1, 4, 2); }},
      {"select", [](const Tensor& t) { return t.select(1, -1); }},
      {"unsqueeze", [](const Tensor& t) { return t.unsqueeze(1); }},
      {"squeeze/dim", [](const Tensor& t) { return t.narrow(1, 1, 1).squeeze(1); }},
      {"squeeze/all", [](const Tensor& t) { return t.narrow(0, 1, 1).narrow(2, 0, 1).squeeze(); }},
      {"expand", [](const Tensor& t) { return t.narrow(1, 0, 1).expand({3, 2, 5, 4}); }},
      {"flatten", [](const Tensor& t) { return t.flatten(1); }},
      {"contiguous", [](const Tensor& t) { return t.transpose(0, 2).contiguous(); }},
      {"clone", [](const Tensor& t) { return t.clone(); }},
      {"chain/permute-slice-reshape-expand",
       [](const Tensor& t) { return t.permute({2, 0, 1}).slice(0, 1, 4, 2).reshape({2, 6}).unsqueeze(0).expand({3, 2, 6}); }},
      {"chain/view-of-view", [](const Tensor& t) { return t.view({6, 4}).view({6, 2, 2}).view({12, 2}); }},
      {"chain/overlapping", [](const Tensor& t) { return add(t.narrow(2, 0, 3), t.narrow(2, 1, 3)); }},
  };
  for (const auto& [name, f] : views) {
    auto fn = f;
    add_case({.name = std::string("view/") + name, .shapes = {{2, 3, 4}},
              .fn = [fn](const In& x) { return fn(x[0]); }});
  }
  // to(dtype) round trip: the forward is exact on float32 values, the gradient the identity.
  // Not gradchecked: rounding to float32 inside the finite difference would swamp it
  // (tests/test_views_grad.cpp checks it with a large step).
  add_case({.name = "view/to-dtype", .shapes = {{3, 4}},
            .fn = [](const In& x) { return x[0].to(kFloat32).to(x[0].dtype()); },
            .gradcheck = false});
}
