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
// Reading trusts nothing: nn/run/safetensors_header.cpp bounds the header length by the file size
// and 100 MB, parses the JSON strictly (nn/run/json.h), checks that each tensor's byte span
// equals numel × element size and that the spans sorted by offset tile the data exactly (a gap,
// an overlap, a span past the end and trailing bytes are each a distinct error). Memory is
// allocated only after all of that holds, so it is bounded by the file size.
//
// dtypes: F32, F64, I64 and BOOL are read and written as they are. F16 and BF16 (what other
// programs often save) are read and converted to float32, exactly; aft does not write them.
// Any other dtype (I32, U8, F8_*, ...) is an error naming it.
#include "nn/run/checkpoint.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <set>

#include <fmt/ranges.h>

#include "autograd/tape.h"
#include "core/format.h"
#include "nn/run/atomic_file.h"
#include "nn/run/json.h"
#include "nn/run/safetensors_header.h"

namespace aft::nn {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; aft writes host memory as it is");

namespace {

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

// Reads one checked entry into a new CPU tensor.
Tensor read_tensor(safetensors::InputFile& file, const std::string& path, const safetensors::Entry& e,
                   uint64_t data_start) {
  Tensor t = empty(Shape(e.shape), e.dtype->dtype);
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
  safetensors::InputFile file(path);
  safetensors::Header h = safetensors::read_header(file, path);
  SafetensorsFile out;
  out.metadata = std::move(h.metadata);
  for (const safetensors::Entry& e : h.entries)
    out.tensors.emplace_back(e.name, read_tensor(file, path, e, h.data_start));
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
