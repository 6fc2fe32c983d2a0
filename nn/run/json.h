// nn/run/json.h: a small, strict JSON reader and writer (RFC 8259), for safetensors headers and
// run configurations. aft has no JSON dependency; this is the little it needs.
//
// The reader never trusts its input: it checks UTF-8, rejects control characters in strings,
// lone surrogates, duplicate object keys, trailing characters, and nesting deeper than
// kMaxDepth (so a hostile "[[[[..." cannot overflow the stack). Every error is an aft::Error
// "<what>: JSON error at byte <i>: <reason>". Numbers keep their text, so 64-bit integers
// (byte offsets) are read exactly instead of through a double.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aft::json {

inline constexpr int kMaxDepth = 128;

struct Member;

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  std::string text;             // a String's value, or a Number's text as written
  std::vector<Value> items;     // Array
  std::vector<Member> members;  // Object, in document order (keys are unique)

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  // The member named key, or nullptr.
  const Value* find(std::string_view key) const;
  // A Number written as a plain non-negative integer (no sign, fraction or exponent) that
  // fits in 64 bits: stores it in *out and returns true.
  bool to_uint64(uint64_t* out) const;
};

struct Member {
  std::string key;
  Value value;
};

const char* kind_name(Value::Kind k);

// Parses a whole document (surrounding whitespace allowed, nothing else). `what` prefixes
// error messages, e.g. the file name.
Value parse(std::string_view text, std::string_view what = "json");

// Plain decimal digits (no sign, no leading '+', not empty) that fit in 64 bits.
bool parse_uint64(std::string_view digits, uint64_t* out);

// Checks that s is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF). On failure, *bad_at (when given) is the offset of the first bad byte.
bool valid_utf8(std::string_view s, size_t* bad_at = nullptr);

// s as a JSON string literal, quotes included ("a\"b\n"). s must be valid UTF-8 (checked:
// aft::Error otherwise).
std::string quote(std::string_view s);

}  // namespace aft::json
