// tests/cases/aft.cpp: op cases of the AFT operators (ops/aft_*.cpp): gradcheck of every input,
// w included, and float32 against float64, causal and not.
#include "../op_cases.h"

using namespace aft;
using namespace aft::test;

AFT_OP_CASES(aft) {
  for (bool causal : {false, true}) {
    const std::string tag = causal ? "/causal" : "";
    add_case({.name = "aft_full" + tag,
              .shapes = {{2, 5, 3}, {2, 5, 3}, {2, 5, 3}, {5, 5}},
              .fn = [causal](const In& x) { return aft_full(x[0], x[1], x[2], x[3], causal); }});
    // window 2: the band is [T, 3], or [T, 2] when causal.
    add_case({.name = "aft_local" + tag,
              .shapes = {{2, 6, 3}, {2, 6, 3}, {2, 6, 3}, {6, causal ? 2 : 3}},
              .fn = [causal](const In& x) { return aft_local(x[0], x[1], x[2], x[3], 2, causal); }});
    add_case({.name = "aft_band_bias" + tag,
              .shapes = {{7, 3}, {7, 3}},
              .fn = [causal](const In& x) { return aft_band_bias(x[0], x[1], 3, causal); }});
    add_case({.name = "aft_simple" + tag,
              .shapes = {{2, 5, 3}, {2, 5, 3}, {2, 5, 3}},
              .fn = [causal](const In& x) { return aft_simple(x[0], x[1], x[2], causal); }});
  }
  // q, v [B, H, W, C] = [1, 3, 4, 4]; 2 heads; k one channel per head, or one per channel.
  add_case({.name = "aft_conv/key_per_head",
            .shapes = {{1, 3, 4, 4}, {1, 3, 4, 2}, {1, 3, 4, 4}, {2, 3, 3}},
            .fn = [](const In& x) { return aft_conv(x[0], x[1], x[2], x[3], 2); }});
  add_case({.name = "aft_conv/key_per_channel",
            .shapes = {{1, 3, 4, 4}, {1, 3, 4, 4}, {1, 3, 4, 4}, {2, 3, 3}},
            .fn = [](const In& x) { return aft_conv(x[0], x[1], x[2], x[3], 2); }});
}
