// nn/run/checkpoint.cpp: the safetensors reader and atomic writer, and training checkpoints on top.
//
// File layout (all integers little-endian):
//   [0, 8)        N, the header length (u64)
//   [8, 8+N)      UTF-8 JSON header, padded with spaces so that 8+N is a multiple of 8
//   [8+N, end)    the data: tensor i occupies [8+N+begin_i, 8+N+end_i), row-major, no gaps
// aft writes the data largest element size first (F64/I64, F32, BOOL) so that every tensor is
// aligned to its element size for memory-mapping readers; the header keeps the caller's order,
// and that is the order load_safetensors returns.
//
// Reading trusts nothing: the header length is bounded by the file size and kMaxHeaderBytes,
// the JSON is parsed strictly (nn/run/json.h), each tensor's byte span must equal numel × element
// size, and the spans sorted by offset must tile the data exactly (a gap, an overlap, a span
// past the end and trailing bytes are each a distinct error). Memory is allocated only after
// all of that holds, so it is bounded by the file size.
//
// dtypes: F32, F64, I64 and BOOL are read and written as they are. F16 and BF16 (what other
// programs often save) are read and converted to float32, exactly; aft does not write them.
// Any other dtype (I32, U8, F8_*, ...) is an error naming it.
#include "nn/run/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/ranges.h>

#include "autograd/tape.h"
#include "core/format.h"
#include "nn/run/atomic_file.h"
#include "nn/run/json.h"

namespace aft::nn {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; aft writes host memory as it is");

namespace {

// The reference implementation's limit on the header (100 MB); a larger one is corruption.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// ---- dtypes

const char* file_dtype(DType d) {
  switch (d) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
    default: return nullptr;
  }
}

struct FileDType {
  std::string_view code;
  size_t size;  // bytes per element in the file
  DType dtype;  // what aft holds after reading
};
constexpr FileDType kReadable[] = {
    {"F32", 4, kFloat32}, {"F64", 8, kFloat64}, {"I64", 8, kInt64}, {"BOOL", 1, kBool},
    {"F16", 2, kFloat32}, {"BF16", 2, kFloat32},
};

// IEEE binary16 -> binary32 (exact): sign s, exponent e (bias 15), mantissa m (10 bits).
//   e = 0: ±m·2^-24 (zero or subnormal);  e = 31: ±inf or NaN;  else ±(1 + m/1024)·2^(e-15).
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) {
    float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  uint32_t bits = e == 31 ? sign | 0x7F800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
  return std::bit_cast<float>(bits);
}
// bfloat16 is the top half of a binary32.
float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// ---- files

std::string os_error() { return std::strerror(errno); }

class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    AFT_CHECK(fd_ >= 0, "safetensors file '{}': cannot open: {}", path, os_error());
    struct stat st;
    if (::fstat(fd_, &st) != 0) AFT_ERROR("safetensors file '{}': cannot stat: {}", path, os_error());
    AFT_CHECK(S_ISREG(st.st_mode), "safetensors file '{}': not a regular file", path);
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  uint64_t size() const { return size_; }

  // Exactly n bytes at offset `at`; a short read means the file shrank since it was opened.
  void read(uint64_t at, void* p, size_t n) {
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

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// One tensor entry of a header, checked against itself (not yet against the others).
struct Entry {
  std::string name;
  const FileDType* dtype = nullptr;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

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

// Reads one checked entry into a new CPU tensor.
Tensor read_tensor(InputFile& file, const std::string& path, const Entry& e, uint64_t data_start) {
  Tensor t = empty(e.shape, e.dtype->dtype);
  size_t n = static_cast<size_t>(e.end - e.begin);
  if (n == 0) return t;
  uint64_t at = data_start + e.begin;
  if (e.dtype->code == "F16" || e.dtype->code == "BF16") {
    std::vector<uint16_t> raw(n / 2);
    file.read(at, raw.data(), n);
    float* out = t.data<float>();
    bool half = e.dtype->code == "F16";
    for (size_t i = 0; i < raw.size(); ++i) out[i] = half ? half_to_float(raw[i]) : bf16_to_float(raw[i]);
    return t;
  }
  file.read(at, t.raw_data(), n);
  if (e.dtype->dtype == kBool) {  // a bool byte other than 0 or 1 is not a value C++ may read
    const unsigned char* b = static_cast<const unsigned char*>(t.raw_data());
    for (size_t i = 0; i < n; ++i)
      AFT_CHECK(b[i] <= 1, "safetensors file '{}': tensor '{}': BOOL element {} is byte 0x{:02x}, not 0 or 1",
                path, e.name, i, b[i]);
  }
  return t;
}

// A metadata value as an integer (plain decimal, nothing else).
template <class T>
T parse_integer(const std::string& path, const Metadata& meta, const std::string& key) {
  auto it = meta.find(key);
  AFT_CHECK(it != meta.end(), "load_checkpoint ({}): metadata \"{}\" is missing", path, key);
  const std::string& s = it->second;
  bool neg = std::is_signed_v<T> && !s.empty() && s[0] == '-';
  uint64_t v = 0;
  bool ok = json::parse_uint64(neg ? std::string_view(s).substr(1) : std::string_view(s), &v);
  if (std::is_signed_v<T>) ok = ok && v <= static_cast<uint64_t>(INT64_MAX);
  AFT_CHECK(ok, "load_checkpoint ({}): metadata \"{}\" = \"{}\" is not an integer", path, key, s);
  if constexpr (std::is_signed_v<T>) return neg ? -static_cast<T>(v) : static_cast<T>(v);
  else return v;
}

// The metadata scheme of checkpoints (see docs/training.md, "Checkpoints").
constexpr const char* kFormatKey = "aft.format";
constexpr const char* kFormatValue = "aft-checkpoint-1";
constexpr const char* kStepKey = "aft.step";
constexpr const char* kSeedKey = "aft.rng.seed";
constexpr const char* kOffsetKey = "aft.rng.offset";
constexpr const char* kConfigKey = "aft.config";
constexpr const char* kHasOptimizerKey = "aft.has_optimizer";
constexpr std::string_view kExtraPrefix = "aft.extra.";
constexpr std::string_view kOptimizerPrefix = "optimizer.";

}  // namespace

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata) {
  // Everything that can be refused is refused before the file is created.
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    AFT_CHECK(name != "__metadata__", "save_safetensors ({}): \"__metadata__\" is reserved, not a tensor name", path);
    AFT_CHECK(names.insert(name).second, "save_safetensors ({}): tensor '{}' appears twice", path, name);
    AFT_CHECK(t.defined(), "save_safetensors ({}): tensor '{}' is undefined", path, name);
    AFT_CHECK(file_dtype(t.dtype()), "save_safetensors ({}): tensor '{}' has dtype {}; aft saves float32, "
              "float64, int64 and bool", path, name, t.dtype());
  }

  // Data order: larger elements first (stable), so each tensor is aligned to its size.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors[a].second.element_size() > tensors[b].second.element_size();
  });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t total = 0;
  for (size_t i : order) {
    begin[i] = total;
    total += static_cast<uint64_t>(tensors[i].second.numel()) * tensors[i].second.element_size();
  }

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += fmt::format("{}{}:{}", first ? "" : ",", json::quote(k), json::quote(v));
      first = false;
    }
    header += "}";
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          header.size() > 1 ? "," : "", json::quote(tensors[i].first), file_dtype(t.dtype()),
                          fmt::join(t.shape(), ","), begin[i], begin[i] + nbytes);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // 8 + N a multiple of 8
  uint64_t n = header.size();

  AtomicFile out(path);
  out.write(&n, 8);
  out.write(header.data(), header.size());
  autograd::NoGradGuard ng;
  for (size_t i : order) {
    // One tensor at a time on the host, densely laid out (views, expanded and CUDA tensors).
    Tensor t = tensors[i].second.detach().to(kCPU).contiguous();
    if (t.numel() > 0) out.write(t.raw_data(), static_cast<size_t>(t.numel()) * t.element_size());
  }
  out.commit();
}

SafetensorsFile load_safetensors(const std::string& path) {
  InputFile file(path);
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
  SafetensorsFile out;
  std::vector<Entry> entries;
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

  for (const Entry& e : entries) out.tensors.emplace_back(e.name, read_tensor(file, path, e, data_start));
  return out;
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const TrainingState& state) {
  StateDict all = model.state_dict();
  for (const auto& [name, t] : all)
    AFT_CHECK(name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) != 0,
              "save_checkpoint ({}): model tensor '{}' would clash with the optimizer's \"{}\" prefix", path,
              name, kOptimizerPrefix);
  if (optimizer)
    for (auto& [name, t] : optimizer->state_dict()) all.emplace_back(std::string(kOptimizerPrefix) + name, t);
  if (!state.config.empty()) json::parse(state.config, fmt::format("save_checkpoint ({}): config", path));

  Metadata meta;
  meta[kFormatKey] = kFormatValue;
  meta[kStepKey] = std::to_string(state.step);
  meta[kSeedKey] = std::to_string(state.rng.seed);
  meta[kOffsetKey] = std::to_string(state.rng.offset);
  meta[kConfigKey] = state.config;
  meta[kHasOptimizerKey] = optimizer ? "true" : "false";
  for (const auto& [k, v] : state.extra) {
    AFT_CHECK(!k.empty(), "save_checkpoint ({}): an extra field has an empty name", path);
    meta[std::string(kExtraPrefix) + k] = v;
  }
  save_safetensors(path, all, meta);
}

TrainingState load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
  SafetensorsFile file = load_safetensors(path);
  const Metadata& meta = file.metadata;

  // Everything is read and checked before the model or the optimizer is touched.
  auto fmt_it = meta.find(kFormatKey);
  AFT_CHECK(fmt_it != meta.end(), "load_checkpoint ({}): not an aft checkpoint (no \"{}\" metadata)", path,
            kFormatKey);
  AFT_CHECK(fmt_it->second == kFormatValue, "load_checkpoint ({}): unknown checkpoint format \"{}\" (expected \"{}\")",
            path, fmt_it->second, kFormatValue);
  TrainingState state;
  state.step = parse_integer<int64_t>(path, meta, kStepKey);
  state.rng.seed = parse_integer<uint64_t>(path, meta, kSeedKey);
  state.rng.offset = parse_integer<uint64_t>(path, meta, kOffsetKey);
  auto cfg = meta.find(kConfigKey);
  AFT_CHECK(cfg != meta.end(), "load_checkpoint ({}): metadata \"{}\" is missing", path, kConfigKey);
  state.config = cfg->second;
  auto has_opt = meta.find(kHasOptimizerKey);
  AFT_CHECK(has_opt != meta.end() && (has_opt->second == "true" || has_opt->second == "false"),
            "load_checkpoint ({}): metadata \"{}\" is missing or not true/false", path, kHasOptimizerKey);
  AFT_CHECK(!optimizer || has_opt->second == "true",
            "load_checkpoint ({}): an optimizer was given but the checkpoint holds no optimizer state", path);
  for (const auto& [k, v] : meta)
    if (k.compare(0, kExtraPrefix.size(), kExtraPrefix) == 0) state.extra[k.substr(kExtraPrefix.size())] = v;

  StateDict model_part, opt_part;
  for (auto& [name, t] : file.tensors) {
    if (name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) == 0)
      opt_part.emplace_back(name.substr(kOptimizerPrefix.size()), t);
    else
      model_part.emplace_back(name, t);
  }

  // The model's names and shapes are checked first (Module::load_state_dict reports a
  // mismatch before it copies anything), then the optimizer loads, then the model: so a bad
  // optimizer state leaves the model untouched too.
  std::map<std::string, Shape> given;
  for (const auto& [name, t] : model_part) given.emplace(name, t.shape());
  StateDict mine = model.state_dict();
  bool model_matches = mine.size() == given.size();
  for (const auto& [name, t] : mine) {
    auto it = given.find(name);
    model_matches = model_matches && it != given.end() && it->second == t.shape();
  }
  try {
    if (!model_matches) model.load_state_dict(model_part, /*strict=*/true);  // throws, naming what differs
    if (optimizer) optimizer->load_state_dict(opt_part);
    if (model_matches) model.load_state_dict(model_part, /*strict=*/true);
  } catch (const Error& e) {
    AFT_ERROR("load_checkpoint ({}): {}", path, e.what());
  }
  return state;
}

}  // namespace aft::nn
