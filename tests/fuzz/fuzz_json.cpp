// tests/fuzz/fuzz_json.cpp: the strict JSON reader (nn/run/json.cpp) on any text: a value or
// aft::Error. A value's quoted strings must parse back to the same text.
#include "fuzz_common.h"
#include "nn/run/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  aft::fuzz::expect_result_or_error([&] {
    aft::json::Value v = aft::json::parse(text, "fuzz");
    if (v.is_string() && aft::json::parse(aft::json::quote(v.text), "requoted").text != v.text) std::abort();
  });
  return 0;
}
