// tests/test_json.cpp: the strict JSON reader and writer of nn/run/json.h (safetensors headers,
// configurations): values, escapes, exact 64-bit integers, UTF-8 checks, and refusals.
#include "helpers.h"
#include "nn/run/json.h"

using namespace aft;
using namespace aft::test;

TEST_CASE("json: values, escapes and numbers") {
  json::Value v = json::parse(R"( {"a": [1, -2.5e3, true, false, null], "s": "\u00e9\ud83d\ude00\n\"", "o": {}} )");
  REQUIRE(v.is_object());
  REQUIRE(v.members.size() == 3);
  const json::Value* a = v.find("a");
  REQUIRE(a);
  REQUIRE(a->items.size() == 5);
  uint64_t u = 0;
  CHECK((a->items[0].to_uint64(&u) && u == 1));
  CHECK(a->items[1].text == "-2.5e3");
  CHECK(!a->items[1].to_uint64(&u));
  CHECK((a->items[2].kind == json::Value::Kind::Bool && a->items[2].boolean));
  CHECK(a->items[4].kind == json::Value::Kind::Null);
  CHECK(v.find("s")->text == "\xc3\xa9\xf0\x9f\x98\x80\n\"");
  CHECK(v.find("missing") == nullptr);
  CHECK((json::parse("18446744073709551615").to_uint64(&u) && u == UINT64_MAX));
  CHECK(!json::parse("18446744073709551616").to_uint64(&u));
  CHECK(json::quote("a\"\\\n\x01\xc3\xa9") == "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");
  CHECK(json::parse(json::quote("x\ty\x1f")).text == "x\ty\x1f");
  for (const char* bad : {"", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "tru", "[1] 2", "\"\\udc00\""}) {
    INFO(bad);
    CHECK_THROWS_AS(json::parse(bad), Error);
  }
  check_error([] { json::parse("{\"k\": 1,}", "cfg"); }, "cfg: JSON error at byte 8");
}

TEST_CASE("json: UTF-8 validation") {
  size_t at = 0;
  CHECK(json::valid_utf8("plain ascii"));
  CHECK(json::valid_utf8("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));  // é € 😀 U+10FFFF
  struct Bad {
    const char* s;
    size_t at;
  };
  for (Bad b : {Bad{"ab\x80", 2}, Bad{"\xc0\xaf", 0}, Bad{"x\xe0\x80\xaf", 1}, Bad{"\xed\xa0\x80", 0},
                Bad{"\xf4\x90\x80\x80", 0}, Bad{"\xf8\x88\x80\x80\x80", 0}, Bad{"ok\xe2\x82", 2},
                Bad{"\xc3(", 0}}) {
    INFO(b.s);
    CHECK(!json::valid_utf8(b.s, &at));
    CHECK(at == b.at);
  }
  check_error([] { json::parse("\"\xed\xa0\x80\"", "t"); }, "t: JSON error at byte 1: invalid UTF-8");
}

TEST_CASE("json: nesting is limited, not recursed without bound") {
  std::string ok(json::kMaxDepth - 1, '['), deep(100000, '[');
  ok += std::string(json::kMaxDepth - 1, ']');
  CHECK(json::parse(ok).is_array());
  check_error([&] { json::parse(deep); }, "nesting deeper than");
  check_error([&] { json::parse("{\"a\":1,\"a\":2}"); }, "duplicate key \"a\"");
}
