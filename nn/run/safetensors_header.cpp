// nn/run/safetensors_header.cpp: checking a safetensors header (see safetensors_header.h).
#include "nn/run/safetensors_header.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/shape.h"
#include "nn/run/json.h"

namespace aft::nn::safetensors {

namespace {

// The reference implementation's limit on the header (100 MB); a larger one is corruption.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

constexpr FileDType kReadable[] = {
    {"F32", 4, kFloat32}, {"F64", 8, kFloat64}, {"I64", 8, kInt64}, {"BOOL", 1, kBool},
    {"F16", 2, kFloat32}, {"BF16", 2, kFloat32},
};

std::string os_error() { return std::strerror(errno); }

std::string shape_text(const std::vector<uint64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

Entry parse_entry(const std::string& path, const json::Member& m, uint64_t data_len) {
  auto bad = [&](const std::string& why) {
    AFT_ERROR("safetensors file '{}': tensor '{}': {}", path, m.key, why);
  };
  if (!m.value.is_object()) bad(fmt::format("entry is {}, expected an object", json::kind_name(m.value.kind)));
  Entry e;
  e.name = m.key;
  for (const json::Member& f : m.value.members)
    if (f.key != "dtype" && f.key != "shape" && f.key != "data_offsets") bad(fmt::format("unknown field \"{}\"", f.key));
  const json::Value* dt = m.value.find("dtype");
  const json::Value* sh = m.value.find("shape");
  const json::Value* off = m.value.find("data_offsets");
  if (!dt || !sh || !off) bad(fmt::format("missing \"{}\"", !dt ? "dtype" : !sh ? "shape" : "data_offsets"));
  if (!dt->is_string()) bad("\"dtype\" is not a string");
  for (const FileDType& f : kReadable)
    if (f.code == dt->text) e.dtype = &f;
  if (!e.dtype)
    bad(fmt::format("unsupported dtype \"{}\" (aft reads F32, F64, I64, BOOL, and F16/BF16 as float32)", dt->text));

  if (!sh->is_array()) bad("\"shape\" is not an array");
  if (sh->items.size() > static_cast<size_t>(kMaxDims))
    bad(fmt::format("{} dimensions, aft supports at most {}", sh->items.size(), kMaxDims));
  std::vector<uint64_t> dims;
  // The product of the non-zero extents must fit in int64 even when another extent is 0
  // (strides of a [0, 2^40, 2^40] tensor would overflow).
  uint64_t nonzero = 1;
  bool has_zero = false;
  for (const json::Value& d : sh->items) {
    uint64_t v = 0;
    if (!d.to_uint64(&v) || v > static_cast<uint64_t>(INT64_MAX))
      bad(fmt::format("shape entry {} is not a non-negative integer", d.is_number() ? d.text : json::kind_name(d.kind)));
    dims.push_back(v);
    has_zero = has_zero || v == 0;
    if (v != 0 && (__builtin_mul_overflow(nonzero, v, &nonzero) || nonzero > static_cast<uint64_t>(INT64_MAX)))
      bad(fmt::format("shape {} has more than 2^63 elements", shape_text(dims)));
  }
  uint64_t nbytes = 0;
  bool overflow = __builtin_mul_overflow(has_zero ? 0 : nonzero, e.dtype->size, &nbytes);
  // A size past the data is an error even when the offsets "agree" with it.
  if (overflow || nbytes > data_len)
    bad(fmt::format("shape {} of {} needs more bytes than the file's {} bytes of data", shape_text(dims),
                    e.dtype->code, data_len));
  for (uint64_t v : dims) e.shape.push_back(static_cast<int64_t>(v));

  if (!off->is_array() || off->items.size() != 2 || !off->items[0].to_uint64(&e.begin) ||
      !off->items[1].to_uint64(&e.end))
    bad("\"data_offsets\" is not a pair of non-negative integers [begin, end]");
  if (e.begin > e.end) bad(fmt::format("data_offsets [{}, {}] end before they begin", e.begin, e.end));
  if (e.end > data_len)
    bad(fmt::format("data_offsets [{}, {}] run past the end of the data ({} bytes after the header)", e.begin,
                    e.end, data_len));
  if (e.end - e.begin != nbytes)
    bad(fmt::format("shape {} of {} is {} bytes but data_offsets [{}, {}] span {}", shape_text(dims),
                    e.dtype->code, nbytes, e.begin, e.end, e.end - e.begin));
  return e;
}

}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  AFT_CHECK(fd_ >= 0, "safetensors file '{}': cannot open: {}", path, os_error());
  struct stat st;
  if (::fstat(fd_, &st) != 0) AFT_ERROR("safetensors file '{}': cannot stat: {}", path, os_error());
  AFT_CHECK(S_ISREG(st.st_mode), "safetensors file '{}': not a regular file", path);
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() { ::close(fd_); }

void InputFile::read(uint64_t at, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::pread(fd_, c, n, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) AFT_ERROR("safetensors file '{}': read error: {}", path_, os_error());
    if (r == 0) AFT_ERROR("safetensors file '{}': file ended early at byte {} (truncated while reading?)", path_, at);
    c += r;
    at += static_cast<uint64_t>(r);
    n -= static_cast<size_t>(r);
  }
}

Header read_header(InputFile& file, const std::string& path) {
  uint64_t size = file.size();
  AFT_CHECK(size >= 8, "safetensors file '{}': {} bytes, too short for the 8-byte header length", path, size);
  uint64_t n = 0;
  file.read(0, &n, 8);
  AFT_CHECK(n <= size - 8, "safetensors file '{}': header length {} exceeds the {} bytes that follow it "
            "(truncated or corrupted)", path, n, size - 8);
  AFT_CHECK(n <= kMaxHeaderBytes, "safetensors file '{}': header length {} exceeds the limit of {} bytes", path, n,
            kMaxHeaderBytes);
  AFT_CHECK(n >= 2, "safetensors file '{}': header length {} is too short for a JSON object", path, n);
  std::string text(static_cast<size_t>(n), '\0');
  file.read(8, text.data(), text.size());
  AFT_CHECK(text[0] == '{', "safetensors file '{}': the header does not start with '{{'", path);
  json::Value header = json::parse(text, fmt::format("safetensors file '{}': header", path));
  AFT_CHECK(header.is_object(), "safetensors file '{}': the header is not a JSON object", path);

  uint64_t data_start = 8 + n, data_len = size - data_start;
  Header out;
  out.data_start = data_start;
  std::vector<Entry>& entries = out.entries;
  for (const json::Member& m : header.members) {
    if (m.key != "__metadata__") {
      entries.push_back(parse_entry(path, m, data_len));
      continue;
    }
    if (m.value.kind == json::Value::Kind::Null) continue;
    AFT_CHECK(m.value.is_object(), "safetensors file '{}': \"__metadata__\" is {}, expected an object of strings",
              path, json::kind_name(m.value.kind));
    for (const json::Member& kv : m.value.members) {
      AFT_CHECK(kv.value.is_string(), "safetensors file '{}': metadata \"{}\" is {}, expected a string", path,
                kv.key, json::kind_name(kv.value.kind));
      out.metadata[kv.key] = kv.value.text;
    }
  }

  // The spans, sorted by offset, must tile [0, data_len) exactly.
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : sorted) {
    if (e->begin < expected)
      AFT_ERROR("safetensors file '{}': tensor '{}' (data_offsets [{}, {}]) overlaps tensor '{}' (ends at {})",
                path, e->name, e->begin, e->end, prev->name, expected);
    if (e->begin > expected)
      AFT_ERROR("safetensors file '{}': gap of {} bytes before tensor '{}' (data_offsets [{}, {}]; previous data "
                "ends at {})", path, e->begin - expected, e->name, e->begin, e->end, expected);
    expected = e->end;
    prev = e;
  }
  AFT_CHECK(expected == data_len, "safetensors file '{}': {} bytes of trailing data after the last tensor "
            "(tensors end at {}, data is {} bytes)", path, data_len - expected, expected, data_len);

  return out;
}

}  // namespace aft::nn::safetensors
