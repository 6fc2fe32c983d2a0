// tests/test_checkpoint.cpp: safetensors files and training checkpoints (nn/run/checkpoint.h).
// (The JSON reader under them has its own tests in tests/test_json.cpp.)
//
// Round trips of every dtype and shape (0-d, zero-sized, 8-d, views), the exact bytes of a small
// file, files written by hand (F16/BF16, other orders), every kind of corruption (each
// truncation of a small file, flipped bytes, lying lengths and offsets: always aft::Error,
// never a crash; run under ASan too), atomic writes (a write that fails or dies half-way leaves
// the previous file intact), checkpoints of a small model with AdamW, and a reading of the
// file by PyTorch (tests/read_safetensors.py; run by the ctest entry test_checkpoint_python).
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <array>
#include <filesystem>
#include <fstream>
#include <random>

#include "helpers.h"
#include "nn/run/checkpoint.h"
#include "nn/run/json.h"

using namespace aft;
using namespace aft::test;
namespace fs = std::filesystem;

namespace {

// A fresh directory, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/aft_ckpt_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
  // Names in the directory other than `keep` (left-over temporary files).
  std::vector<std::string> others(const std::string& keep) const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(path))
      if (e.path().filename() != keep) out.push_back(e.path().filename());
    return out;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  fs::remove(path);  // a new file: ext4 flushes a file truncated and rewritten at close, slowly
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
// A file: 8-byte little-endian header length, the header, the data.
std::string st_file(const std::string& header, const std::string& data = "") {
  uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}
template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Same dtype, shape and bytes (so NaN payloads and -0.0 count too).
void check_same(const Tensor& a, const Tensor& b, const std::string& name) {
  INFO("tensor ", name);
  REQUIRE(a.dtype() == b.dtype());
  REQUIRE(a.shape() == b.shape());
  Tensor ca = a.detach().cpu().contiguous(), cb = b.detach().cpu().contiguous();
  size_t n = static_cast<size_t>(a.numel()) * a.element_size();
  CHECK((n == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), n) == 0));
}

// Every dtype aft writes, ranks 0 to 8, zero-sized, special values, and views.
nn::StateDict sample_tensors() {
  Generator g(7);
  nn::StateDict s;
  s.emplace_back("f32", randn({2, 3}, kFloat32, &g));
  s.emplace_back("bool", from_vector<bool>({true, false, false, true, true}));
  s.emplace_back("f64", from_vector<double>({1.5, -0.0, INFINITY, -INFINITY, NAN, 1e-310, 1e300}));
  s.emplace_back("i64", from_vector<int64_t>({INT64_MIN, -1, 0, 1, INT64_MAX, 1LL << 53 | 1}, Shape{3, 2}));
  s.emplace_back("scalar_f32", scalar_tensor(3.25, kFloat32));
  s.emplace_back("scalar_i64", from_vector<int64_t>({-42}, Shape{}));
  s.emplace_back("scalar_bool", from_vector<bool>({true}, Shape{}));
  s.emplace_back("empty_f32", zeros({0, 3}, kFloat32));
  s.emplace_back("empty_bool", zeros({2, 0, 4}, kBool));
  s.emplace_back("rank8", randn({1, 2, 1, 2, 1, 2, 1, 2}, kFloat64, &g));
  Tensor base = randn({3, 4}, kFloat32, &g);
  s.emplace_back("transposed", base.t());                                  // strides [1, 4]
  s.emplace_back("stepped", arange(20).slice(0, 1, 20, 3));               // stride 3, offset 1
  s.emplace_back("expanded", from_vector<double>({1, 2}, Shape{2, 1}).expand({2, 3}));  // stride 0
  s.emplace_back("unicode name \xc3\xa9\"\\", ones({1}, kFloat32));
  return s;
}

void check_same_dict(const nn::StateDict& a, const nn::StateDict& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    check_same(a[i].second, b[i].second, a[i].first);
  }
}

// Loads a file that must be refused: aft::Error naming the file and containing `needle`.
void check_refused(const std::string& path, const std::string& needle) {
  check_error([&] { nn::load_safetensors(path); }, needle);
  check_error([&] { nn::load_safetensors(path); }, path);
}

}  // namespace

TEST_CASE("safetensors: every dtype and shape round-trips, bit for bit, with metadata") {
  TempDir dir;
  nn::StateDict s = sample_tensors();
  nn::Metadata meta{{"note", "quotes \" backslash \\ tab \t newline \n \x01 caf\xc3\xa9"}, {"empty", ""}};
  nn::save_safetensors(dir / "a.safetensors", s, meta);
  nn::SafetensorsFile f = nn::load_safetensors(dir / "a.safetensors");
  check_same_dict(f.tensors, s);
  CHECK(f.metadata == meta);
  for (auto& [name, t] : f.tensors) CHECK(t.is_cpu());
  CHECK(dir.others("a.safetensors").empty());

  // Layout: 8 + N is a multiple of 8 and each tensor is aligned to its element size.
  std::string bytes = read_bytes(dir / "a.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
  json::Value h = json::parse(bytes.substr(8, n));
  for (const json::Member& m : h.members) {
    if (m.key == "__metadata__") continue;
    uint64_t begin = 0, size = m.value.find("dtype")->text == "BOOL" ? 1 : m.value.find("dtype")->text == "F32" ? 4 : 8;
    REQUIRE(m.value.find("data_offsets")->items[0].to_uint64(&begin));
    CHECK_MESSAGE((8 + n + begin) % size == 0, m.key);
  }

  // An empty dictionary, and overwriting an existing file.
  nn::save_safetensors(dir / "a.safetensors", {});
  f = nn::load_safetensors(dir / "a.safetensors");
  CHECK(f.tensors.empty());
  CHECK(f.metadata.empty());
}

TEST_CASE("safetensors: the bytes of a small file are the format's") {
  TempDir dir;
  nn::save_safetensors(dir / "x.st", {{"a", from_vector<float>({1.0f, 2.0f})}, {"b", from_vector<bool>({true})}},
                       {{"k", "v"}});
  std::string header = R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"BOOL","shape":[1],"data_offsets":[8,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  CHECK(read_bytes(dir / "x.st") == st_file(header, raw<float>({1.0f, 2.0f}) + std::string(1, '\1')));
}

TEST_CASE("safetensors: files written by other programs (F16, BF16, any order, whitespace)") {
  TempDir dir;
  // Data order differs from header order; F16: 1, -2, inf, 2^-24 (subnormal), -0, NaN, 65504.
  std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x7C00, 0x0001, 0x8000, 0x7E00, 0x7BFF};
  std::vector<uint16_t> bf16 = {0x3F80, 0x4049, 0xFF80};  // 1, 3.140625, -inf
  std::string header = " \n"
      R"({ "h" : {"data_offsets": [6, 20], "shape": [7], "dtype": "F16"},)"
      R"( "b": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},)"
      R"( "__metadata__": {"n\u00e9\ud83d\ude00": "x\/y"}})";
  header = header.substr(2);  // must start with '{'; trailing spaces are allowed
  header += "   ";
  write_bytes(dir / "o.st", st_file(header, raw(bf16) + raw(f16)));
  nn::SafetensorsFile f = nn::load_safetensors(dir / "o.st");
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].first == "h");
  CHECK(f.tensors[0].second.dtype() == kFloat32);
  std::vector<float> h = f.tensors[0].second.to_vector<float>();
  CHECK(h[0] == 1.0f);
  CHECK(h[1] == -2.0f);
  CHECK(h[2] == INFINITY);
  CHECK(h[3] == std::ldexp(1.0f, -24));
  CHECK((h[4] == 0.0f && std::signbit(h[4])));
  CHECK(std::isnan(h[5]));
  CHECK(h[6] == 65504.0f);
  CHECK(f.tensors[1].second.to_vector<float>() == std::vector<float>{1.0f, 3.140625f, -INFINITY});
  CHECK(f.metadata.at("n\xc3\xa9\xf0\x9f\x98\x80") == "x/y");
}

TEST_CASE("safetensors: bad headers give aft::Error with the exact reason") {
  TempDir dir;
  std::string p = dir / "bad.st";
  auto refuse = [&](const std::string& bytes, const std::string& needle) {
    write_bytes(p, bytes);
    check_refused(p, needle);
  };
  std::string d8 = raw<float>({1, 2});
  auto one = [&](const std::string& entry) { return st_file("{\"a\":" + entry + "}", d8); };
  SUBCASE("sizes") {
    refuse("", "too short for the 8-byte header length");
    refuse(std::string(7, '\0'), "too short");
    refuse(st_file("{}").substr(0, 8), "header length 2 exceeds the 0 bytes that follow it");
    uint64_t huge = UINT64_MAX;
    refuse(std::string(reinterpret_cast<char*>(&huge), 8) + "{}", "header length 18446744073709551615 exceeds");
    refuse(st_file(""), "header length 0 is too short");
    // A header length over the limit, within a (sparse) file large enough to hold it.
    uint64_t big = 150'000'000;
    write_bytes(p, std::string(reinterpret_cast<char*>(&big), 8) + "{}");
    fs::resize_file(p, 200'000'000);
    check_refused(p, "exceeds the limit of 100000000 bytes");
  }
  SUBCASE("JSON") {
    refuse(st_file("[]"), "does not start with '{'");
    refuse(st_file(" {}"), "does not start with '{'");
    refuse(st_file("{\"a\":"), "unexpected end of input");
    refuse(st_file("{} x"), "unexpected 'x' after the end of the document");
    refuse(st_file("{\"a\xff\":1}"), "invalid UTF-8");
    refuse(st_file("{\"\xc0\xaf\":1}"), "invalid UTF-8");  // overlong '/'
    refuse(st_file("{\"a\":\"\\ud800\"}"), "lone high surrogate");
    refuse(st_file("{\"a\":\"x\ny\"}"), "control character");
    refuse(st_file("{\"a\":01}"), "leading zero");
    refuse(st_file("{\"__metadata__\":" + std::string(5000, '[') + std::string(5000, ']') + "}"), "nesting deeper");
    refuse(st_file("{\"a\":{},\"a\":{}}"), "duplicate key \"a\"");
    refuse(st_file("{\"__metadata__\":{\"k\":1}}"), "metadata \"k\" is a number, expected a string");
    refuse(st_file("{\"__metadata__\":[]}"), "\"__metadata__\" is an array");
  }
  SUBCASE("entries") {
    refuse(one("[]"), "tensor 'a': entry is an array");
    refuse(one(R"({"shape":[2],"data_offsets":[0,8]})"), "tensor 'a': missing \"dtype\"");
    refuse(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})"), "unknown field \"x\"");
    refuse(one(R"({"dtype":"Q7","shape":[2],"data_offsets":[0,8]})"), "unsupported dtype \"Q7\"");
    refuse(one(R"({"dtype":"I32","shape":[2],"data_offsets":[0,8]})"), "unsupported dtype \"I32\"");
    refuse(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), "shape entry -2 is not a non-negative");
    refuse(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), "shape entry 2.0");
    refuse(one(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]})"), "9 dimensions");
    refuse(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), "shape [3] of F32 needs more bytes than");
    refuse(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,8]})"),
           "shape [1] of F32 is 4 bytes but data_offsets [0, 8] span 8");
    refuse(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), "more than 2^63 elements");
    refuse(one(R"({"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,8]})"), "more than 2^63");
    refuse(one(R"({"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,8]})"), "needs more bytes");
    refuse(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), "end before they begin");
    refuse(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), "not a pair of non-negative integers");
    refuse(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]})"), "not a pair");
    refuse(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})"), "run past the end of the data (8 bytes");
    refuse(one(R"({"dtype":"BOOL","shape":[8],"data_offsets":[0,8]})"), "BOOL element 2 is byte 0x80");
  }
  SUBCASE("offsets that do not tile the data") {
    std::string t = R"("dtype":"F32","shape":[1],"data_offsets":)";
    refuse(st_file("{\"a\":{" + t + "[0,4]},\"b\":{" + t + "[4,8]}}", d8 + "xx"),
           "2 bytes of trailing data after the last tensor");
    refuse(st_file("{\"a\":{" + t + "[0,4]},\"b\":{" + t + "[2,6]}}", d8), "tensor 'b' (data_offsets [2, 6]) overlaps tensor 'a'");
    refuse(st_file("{\"a\":{" + t + "[0,4]},\"b\":{" + t + "[0,4]}}", d8), "overlaps");
    refuse(st_file("{\"a\":{" + t + "[4,8]}}", d8), "gap of 4 bytes before tensor 'a'");
    refuse(st_file("{}", d8), "8 bytes of trailing data");
  }
  SUBCASE("not a file") {
    check_refused(dir / "missing.st", "cannot open: No such file or directory");
    check_refused(dir.path, "not a regular file");
  }
}

TEST_CASE("safetensors: truncation at every byte and flipped bytes never crash") {
  TempDir dir;
  nn::StateDict s = {{"w", from_vector<float>({1, 2, 3}, Shape{3})},
                     {"m", from_vector<bool>({true, false})},
                     {"i", from_vector<int64_t>({5}, Shape{})}};
  nn::save_safetensors(dir / "ok.st", s, {{"k", "v"}});
  std::string good = read_bytes(dir / "ok.st");
  std::string p = dir / "c.st";
  for (size_t len = 0; len < good.size(); ++len) {
    write_bytes(p, good.substr(0, len));
    INFO("truncated to ", len, " of ", good.size(), " bytes");
    check_refused(p, "safetensors file");
  }
  // A header length off by a little either way: the header swallows data bytes, or the data
  // gains header bytes; both must be refused.
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  for (int64_t delta = -16; delta <= 16; ++delta) {
    if (delta == 0) continue;
    uint64_t lie = n + static_cast<uint64_t>(delta);
    std::string bad = good;
    std::memcpy(bad.data(), &lie, 8);
    write_bytes(p, bad);
    INFO("header length ", n, " + ", delta);
    check_refused(p, "safetensors file");
  }
  // Every byte flipped by several masks: a clear error, or a file that still parses (a
  // changed name or value), never another exception or a crash (see the ASan build).
  int refused = 0, accepted = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned mask : {0x01u, 0x02u, 0x10u, 0x20u, 0x80u, 0xFFu}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      write_bytes(p, bad);
      try {
        nn::load_safetensors(p);
        ++accepted;
      } catch (const Error& e) {
        ++refused;
        CHECK(std::string(e.what()).find(p) != std::string::npos);
      }
    }
  }
  // Random damage (fixed seed): bytes overwritten, inserted and deleted, several at once.
  std::mt19937_64 rng(12345);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = good;
    for (int k = 0, edits = 1 + static_cast<int>(rng() % 4); k < edits; ++k) {
      size_t at = rng() % bad.size();
      char byte = static_cast<char>(rng() % 256);
      switch (rng() % 3) {
        case 0: bad[at] = byte; break;
        case 1: bad.insert(bad.begin() + static_cast<std::ptrdiff_t>(at), byte); break;
        default: bad.erase(at, 1);
      }
    }
    write_bytes(p, bad);
    try {
      nn::load_safetensors(p);
      ++accepted;
    } catch (const Error& e) {
      ++refused;
    }
  }
  MESSAGE(refused, " corruptions refused, ", accepted, " still valid files");
  CHECK(refused > accepted);
}

TEST_CASE("safetensors: writes refuse bad input before touching the file") {
  TempDir dir;
  std::string p = dir / "w.st";
  nn::save_safetensors(p, {{"a", ones({2})}});
  std::string before = read_bytes(p);
  check_error([&] { nn::save_safetensors(p, {{"a", ones({2})}, {"a", ones({1})}}); }, "tensor 'a' appears twice");
  check_error([&] { nn::save_safetensors(p, {{"__metadata__", ones({2})}}); }, "is reserved");
  check_error([&] { nn::save_safetensors(p, {{"u", Tensor()}}); }, "tensor 'u' is undefined");
  check_error([&] { nn::save_safetensors(p, {{"h", empty({2}, DType::BFloat16)}}); }, "has dtype bfloat16");
  check_error([&] { nn::save_safetensors(p, {{"bad\xff", ones({2})}}); }, "not valid UTF-8");
  check_error([&] { nn::save_safetensors(p, {}, {{"k", "\xc3"}}); }, "not valid UTF-8");
  CHECK(read_bytes(p) == before);
  CHECK(dir.others("w.st").empty());
}

TEST_CASE("safetensors: a failed write leaves the previous file intact and no temporary file") {
  TempDir dir;
  std::string p = dir / "keep.st";
  nn::StateDict old = {{"old", from_vector<double>({1, 2, 3})}};
  nn::save_safetensors(p, old);
  std::string before = read_bytes(p);
  nn::StateDict big = {{"big", zeros({100000}, kFloat32)}};

  SUBCASE("disk full half-way (RLIMIT_FSIZE: write() fails with EFBIG)") {
    struct rlimit saved;
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string msg;
    try {
      nn::save_safetensors(p, big);
    } catch (const Error& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
    CHECK_MESSAGE(msg.find("cannot write") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(std::strerror(EFBIG)) != std::string::npos, msg);
  }
  SUBCASE("the process dies half-way (killed by SIGXFSZ in a child)") {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      struct rlimit small = {4096, 4096};
      ::setrlimit(RLIMIT_FSIZE, &small);
      ::signal(SIGXFSZ, SIG_DFL);
      try {
        nn::save_safetensors(p, big);
      } catch (...) {
      }
      ::_exit(0);  // not reached: the signal ends the process inside write()
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    // The dead writer's temporary file stays (nothing ran to remove it); the target is whole.
    std::vector<std::string> left = dir.others("keep.st");
    REQUIRE(left.size() == 1);
    CHECK(left[0].find("keep.st.tmp.") == 0);
    fs::remove(dir / left[0]);
  }
  SUBCASE("the target is a directory (rename fails)") {
    fs::create_directory(dir / "sub.st");
    check_error([&] { nn::save_safetensors(dir / "sub.st", big); }, "cannot rename");
    CHECK(fs::is_directory(dir / "sub.st"));
    fs::remove(dir / "sub.st");
  }
  SUBCASE("the directory does not exist") {
    check_error([&] { nn::save_safetensors(dir / "no/such.st", big); }, std::strerror(ENOENT));
  }
  CHECK(read_bytes(p) == before);
  check_same_dict(nn::load_safetensors(p).tensors, old);
  CHECK(dir.others("keep.st").empty());
}

TEST_CASE("safetensors: CUDA tensors are copied to the host") {
  if (!cuda::is_available()) {
    MESSAGE("skipped: no CUDA device (" << cuda::unavailable_reason() << ")");
    return;
  }
  TempDir dir;
  Tensor host = randn({3, 5}, kFloat64);
  nn::save_safetensors(dir / "g.st", {{"g", host.cuda().t()}});
  check_same(nn::load_safetensors(dir / "g.st").tensors.at(0).second, host.t(), "g");
}

// ---- checkpoints

namespace {

struct Inner : nn::Module {
  Tensor scale;
  Tensor mask;
  explicit Inner(uint64_t seed) : Module("Inner") {
    Generator g(seed);
    scale = register_parameter("scale", randn({2}, kFloat64, &g), nn::ParamKind::Norm);
    mask = register_buffer("mask", gt(randn({4}, kFloat32, &g), 0.0));
  }
};

struct Tiny : nn::Module {
  Tensor weight, bias, count;
  std::shared_ptr<Inner> inner;
  explicit Tiny(uint64_t seed, int64_t out = 3) : Module("Tiny") {
    Generator g(seed);
    weight = register_parameter("weight", randn({out, 4}, kFloat32, &g));
    bias = register_parameter("bias", randn({out}, kFloat32, &g), nn::ParamKind::Bias);
    count = register_buffer("count", from_vector<int64_t>({static_cast<int64_t>(seed)}, Shape{}));
    inner = register_module("inner", std::make_shared<Inner>(seed + 1));
  }
  // Two losses (float32 and float64 parameters); fills the gradients.
  void backward(const Tensor& x) {
    sum(mul(add(matmul(x, weight.t()), bias), add(matmul(x, weight.t()), bias))).backward();
    sum(mul(inner->scale, inner->scale)).backward();
  }
};

nn::AdamW make_adamw(const nn::Module& m) {
  nn::AdamWOptions o;
  o.lr = 0.05;
  return nn::AdamW(nn::make_param_groups(m, 0.1), o);
}

void train(Tiny& m, nn::Optimizer& opt, int steps) {
  Tensor x = from_vector<float>({0.5f, -1.0f, 2.0f, 0.25f, 1.0f, 0.0f, -0.5f, 1.5f}, Shape{2, 4});
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    m.backward(x);
    opt.step();
  }
}

}  // namespace

TEST_CASE("checkpoint: model, AdamW state, step, RNG, config and extras round-trip") {
  TempDir dir;
  std::string p = dir / "ck.safetensors";
  Tiny a(1);
  nn::AdamW opt_a = make_adamw(a);
  train(a, opt_a, 3);
  nn::TrainingState st;
  st.step = 3;
  st.rng = {0xDEADBEEFCAFEF00Dull, 123456789012345ull};
  st.config = R"({"dim": 4, "name": "tiny", "layers": [1, 2]})";
  st.extra = {{"best_valid_loss", "2.5"}, {"note", "x"}};
  nn::save_checkpoint(p, a, &opt_a, st);

  // Python users see the model under its own names and the optimizer under "optimizer.".
  nn::SafetensorsFile f = nn::load_safetensors(p);
  CHECK(f.tensors.at(0).first == "weight");
  CHECK(f.metadata.at("aft.step") == "3");
  CHECK(f.metadata.at("aft.rng.seed") == "16045690984503111693");
  CHECK(f.metadata.at("aft.extra.best_valid_loss") == "2.5");
  bool has_exp_avg = false;
  for (auto& [n, t] : f.tensors) has_exp_avg = has_exp_avg || n == "optimizer.exp_avg.weight";
  CHECK(has_exp_avg);

  Tiny b(99);
  nn::AdamW opt_b = make_adamw(b);
  nn::TrainingState got = nn::load_checkpoint(p, b, &opt_b);
  CHECK(got.step == 3);
  CHECK(got.rng.seed == st.rng.seed);
  CHECK(got.rng.offset == st.rng.offset);
  CHECK(got.config == st.config);
  CHECK(got.extra == st.extra);
  check_same_dict(b.state_dict(), a.state_dict());
  check_same_dict(opt_b.state_dict(), opt_a.state_dict());
  CHECK(opt_b.steps_taken() == 3);
  // The resumed run continues exactly as the original.
  train(a, opt_a, 2);
  train(b, opt_b, 2);
  check_same_dict(b.state_dict(), a.state_dict());

  // Without an optimizer, only the model loads.
  Tiny c(5);
  CHECK(nn::load_checkpoint(p, c, nullptr).step == 3);
  check_same(c.weight, f.tensors.at(0).second, "weight");

  // A checkpoint saved without optimizer state, and the defaults.
  nn::save_checkpoint(dir / "m.st", a, nullptr, {});
  got = nn::load_checkpoint(dir / "m.st", c, nullptr);
  CHECK(got.step == 0);
  CHECK(got.config.empty());
  check_error([&] { nn::load_checkpoint(dir / "m.st", c, &opt_b); }, "holds no optimizer state");
}

TEST_CASE("checkpoint: a mismatch changes nothing, and bad files are refused") {
  TempDir dir;
  std::string p = dir / "ck.st";
  Tiny a(1);
  nn::AdamW opt_a = make_adamw(a);
  train(a, opt_a, 2);
  nn::save_checkpoint(p, a, &opt_a, {.step = 2});

  // The model does not fit: neither the model nor the optimizer changes.
  Tiny wide(3, /*out=*/5);
  nn::AdamW opt_w = make_adamw(wide);
  train(wide, opt_w, 1);
  nn::StateDict model_before = wide.state_dict(), opt_before = opt_w.state_dict();
  for (auto& [n, t] : model_before) t = t.clone();
  for (auto& [n, t] : opt_before) t = t.clone();
  check_error([&] { nn::load_checkpoint(p, wide, &opt_w); }, "weight (expected [5, 4], got [3, 4])");
  check_error([&] { nn::load_checkpoint(p, wide, &opt_w); }, p);
  check_same_dict(wide.state_dict(), model_before);
  check_same_dict(opt_w.state_dict(), opt_before);

  // The model fits but the optimizer state does not (an optimizer over one group of a
  // different model): the model must not change either.
  Tiny b(7);
  nn::StateDict b_before = b.state_dict();
  for (auto& [n, t] : b_before) t = t.clone();
  nn::AdamW other = nn::AdamW(nn::single_group(wide, 0.0), nn::AdamWOptions{});
  check_error([&] { nn::load_checkpoint(p, b, &other); }, "AdamW.load_state_dict");
  check_same_dict(b.state_dict(), b_before);

  // Files that are not (valid) checkpoints.
  nn::save_safetensors(dir / "plain.st", a.state_dict());
  check_error([&] { nn::load_checkpoint(dir / "plain.st", b, nullptr); }, "not an aft checkpoint");
  nn::SafetensorsFile f = nn::load_safetensors(p);
  for (auto [key, value, needle] : std::vector<std::array<std::string, 3>>{
           {"aft.step", "12x", "\"aft.step\" = \"12x\" is not an integer"},
           {"aft.rng.offset", "-1", "is not an integer"},
           {"aft.format", "aft-checkpoint-9", "unknown checkpoint format"},
           {"aft.has_optimizer", "maybe", "not true/false"}}) {
    nn::Metadata m = f.metadata;
    m[key] = value;
    nn::save_safetensors(dir / "meta.st", f.tensors, m);
    check_error([&] { nn::load_checkpoint(dir / "meta.st", b, nullptr); }, needle);
  }
  check_same_dict(b.state_dict(), b_before);

  // Saving refuses a bad config and a model name in the optimizer's namespace.
  check_error([&] { nn::save_checkpoint(dir / "x.st", a, nullptr, {.config = "{\"a\": }"}); }, "config: JSON error");
  struct Clash : nn::Module {
    Clash() : Module("Clash") { register_module("optimizer", std::make_shared<Inner>(1)); }
  } clash;
  check_error([&] { nn::save_checkpoint(dir / "x.st", clash, nullptr, {}); }, "clash with the optimizer's");
  CHECK(!fs::exists(dir / "x.st"));
}

// Run by the ctest entry test_checkpoint_python (doctest::skip keeps it out of the plain run):
// exits 77 (skipped) when /usr/bin/python3 or PyTorch is missing.
TEST_CASE("safetensors: PyTorch reads what aft writes" * doctest::skip()) {
  const char* python = "/usr/bin/python3";
  fs::path script = fs::path(__FILE__).parent_path() / "read_safetensors.py";
  if (::access(python, X_OK) != 0) {
    std::fprintf(stderr, "skipped: %s not found\n", python);
    std::exit(77);
  }
  REQUIRE_MESSAGE(fs::exists(script), script.string());
  TempDir dir;
  std::string p = dir / "py.safetensors";
  nn::StateDict s = sample_tensors();
  nn::save_safetensors(p, s, {{"aft.step", "7"}, {"note", "caf\xc3\xa9"}});
  // OpenBLAS settings of this machine's environment are not for Python's own OpenBLAS.
  std::string cmd = fmt::format("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {} {} {}", python, script.string(), p);
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  int status = ::pclose(pipe);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) std::exit(77);  // the script said why on stderr
  REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, cmd);

  json::Value doc = json::parse(out, "read_safetensors.py output");
  CHECK(doc.find("metadata")->find("aft.step")->text == "7");
  CHECK(doc.find("metadata")->find("note")->text == "caf\xc3\xa9");
  const json::Value& ts = *doc.find("tensors");
  REQUIRE(ts.items.size() == s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const json::Value& t = ts.items[i];
    const auto& [name, want] = s[i];
    INFO("tensor ", name);
    CHECK(t.find("name")->text == name);
    std::vector<std::string> shape;
    for (const json::Value& d : t.find("shape")->items) shape.push_back(d.text);
    CHECK(fmt::format("{}", fmt::join(shape, ", ")) == fmt::format("{}", fmt::join(want.shape(), ", ")));
    // Element bits as integers, as the script prints them.
    Tensor c = want.contiguous();
    std::vector<std::string> bits;
    for (int64_t k = 0; k < c.numel(); ++k) {
      switch (c.dtype()) {
        case kFloat32: { int32_t b; std::memcpy(&b, c.data<float>() + k, 4); bits.push_back(std::to_string(b)); break; }
        case kFloat64: { int64_t b; std::memcpy(&b, c.data<double>() + k, 8); bits.push_back(std::to_string(b)); break; }
        case kInt64: bits.push_back(std::to_string(c.data<int64_t>()[k])); break;
        default: bits.push_back(c.data<bool>()[k] ? "1" : "0");
      }
    }
    std::vector<std::string> got;
    for (const json::Value& b : t.find("bits")->items) got.push_back(b.text);
    CHECK(got == bits);
  }
}
