// nn/run/json.cpp: the strict JSON reader (recursive descent, depth-limited) and string quoting.
#include "nn/run/json.h"

#include <set>

#include "core/error.h"

namespace aft::json {

const Value* Value::find(std::string_view key) const {
  for (const Member& m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

bool Value::to_uint64(uint64_t* out) const {
  return kind == Kind::Number && parse_uint64(text, out);  // a fraction or exponent fails
}

bool parse_uint64(std::string_view digits, uint64_t* out) {
  if (digits.empty()) return false;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // v·10 + d would overflow
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "a boolean";
    case Value::Kind::Number: return "a number";
    case Value::Kind::String: return "a string";
    case Value::Kind::Array: return "an array";
    case Value::Kind::Object: return "an object";
  }
  return "?";
}

// UTF-8 (RFC 3629): a lead byte gives the length (1-4); continuation bytes are 10xxxxxx;
// the shortest form only, no surrogates D800-DFFF, nothing above U+10FFFF.
bool valid_utf8(std::string_view s, size_t* bad_at) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned c = u(i);
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else { if (bad_at) *bad_at = i; return false; }
    if (n - i < len) { if (bad_at) *bad_at = i; return false; }
    for (size_t k = 1; k < len; ++k) {
      if ((u(i + k) & 0xC0) != 0x80) { if (bad_at) *bad_at = i; return false; }
      cp = (cp << 6) | (u(i + k) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (bad_at) *bad_at = i;
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view what) : s_(text), what_(what) {}

  Value document() {
    size_t bad = 0;
    if (!valid_utf8(s_, &bad)) fail_at(bad, "invalid UTF-8");
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (i_ != s_.size()) fail("unexpected '{}' after the end of the document", shown(i_));
    return v;
  }

 private:
  template <class... Args>
  [[noreturn]] void fail_at(size_t at, fmt::format_string<Args...> f, Args&&... args) {
    AFT_ERROR("{}: JSON error at byte {}: {}", what_, at, fmt::format(f, std::forward<Args>(args)...));
  }
  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
    fail_at(i_, f, std::forward<Args>(args)...);
  }
  // The character at i for messages (printable, or its hex code).
  std::string shown(size_t i) const {
    unsigned char c = static_cast<unsigned char>(s_[i]);
    return c >= 0x20 && c < 0x7F ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  void skip_ws() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (at_end()) fail("unexpected end of input, expected '{}'", c);
    if (s_[i_] != c) fail("expected '{}', found '{}'", c, shown(i_));
    ++i_;
  }

  Value value(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than {}", kMaxDepth);
    if (at_end()) fail("unexpected end of input, expected a value");
    Value v;
    char c = s_[i_];
    if (c == '{') {
      object(&v, depth);
    } else if (c == '[') {
      v.kind = Value::Kind::Array;
      ++i_;
      skip_ws();
      if (peek() == ']') { ++i_; return v; }
      for (;;) {
        skip_ws();
        v.items.push_back(value(depth + 1));
        skip_ws();
        if (peek() == ',') { ++i_; continue; }
        expect(']');
        break;
      }
    } else if (c == '"') {
      v.kind = Value::Kind::String;
      v.text = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Value::Kind::Number;
      v.text = number();
    } else if (literal("true")) {
      v.kind = Value::Kind::Bool;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = Value::Kind::Bool;
    } else if (!literal("null")) {
      fail("unexpected '{}', expected a value", shown(i_));
    }
    return v;
  }

  void object(Value* v, int depth) {
    v->kind = Value::Kind::Object;
    std::set<std::string> seen;
    ++i_;
    skip_ws();
    if (peek() == '}') { ++i_; return; }
    for (;;) {
      skip_ws();
      if (peek() != '"') {
        if (at_end()) fail("unexpected end of input, expected a key");
        fail("expected a string key, found '{}'", shown(i_));
      }
      size_t key_at = i_;
      std::string key = string();
      if (!seen.insert(key).second) fail_at(key_at, "duplicate key \"{}\"", key);
      skip_ws();
      expect(':');
      skip_ws();
      v->members.push_back({std::move(key), value(depth + 1)});
      skip_ws();
      if (peek() == ',') { ++i_; continue; }
      expect('}');
      return;
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  // number = [-] int [frac] [exp];  int = 0 | [1-9][0-9]*
  std::string number() {
    size_t start = i_;
    auto digits = [&] {
      size_t d = i_;
      while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == d) fail("malformed number: expected a digit");
    };
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
      if (peek() >= '0' && peek() <= '9') fail("malformed number: leading zero");
    } else {
      digits();
    }
    if (peek() == '.') { ++i_; digits(); }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      digits();
    }
    return std::string(s_.substr(start, i_ - start));
  }

  uint32_t hex4() {
    if (s_.size() - i_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) fail_at(i_ - 1, "bad hex digit '{}' in \\u escape", shown(i_ - 1));
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') { ++i_; return out; }
      if (c < 0x20) fail("control character \\x{:02x} in a string", c);
      if (c != '\\') { out += static_cast<char>(c); ++i_; continue; }  // UTF-8 checked up front
      ++i_;
      if (at_end()) fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          size_t at = i_ - 2;
          uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(at, "lone low surrogate \\u{:04x}", cp);
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate must be followed by a low one
            if (s_.substr(i_, 2) != "\\u") fail_at(at, "lone high surrogate \\u{:04x}", cp);
            i_ += 2;
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail_at(at, "high surrogate \\u{:04x} not followed by a low one", cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(&out, cp);
          break;
        }
        default: fail_at(i_ - 1, "bad escape '\\{}'", shown(i_ - 1));
      }
    }
  }

  std::string_view s_;
  std::string_view what_;
  size_t i_ = 0;
};

}  // namespace

Value parse(std::string_view text, std::string_view what) { return Parser(text, what).document(); }

std::string quote(std::string_view s) {
  size_t bad = 0;
  AFT_CHECK(valid_utf8(s, &bad), "json: string is not valid UTF-8 (byte {}): \"{}\"", bad,
            std::string(s.substr(0, bad)));
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += ch;
    }
  }
  return out + "\"";
}

}  // namespace aft::json
