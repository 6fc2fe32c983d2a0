// tests/test_enwik8.cpp: the character LM's code (examples/enwik8): the corpus reader on good and
// broken files (raw, gzip, zip, the Enwik8 size rule), bits per character of a known
// distribution, sampling, and that training lowers the loss.
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "../examples/common/files.h"
#include "../examples/enwik8/bpc.h"
#include "../examples/enwik8/corpus.h"
#include "archive_writers.h"
#include "example_helpers.h"
#include "helpers.h"
#include "nn/optim/optim.h"

using namespace aft;
using namespace aft::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch() { return scratch_dir("enwik8"); }

std::vector<uint8_t> text_bytes(size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>("the quick brown fox jumps. "[i % 27]);
  return b;
}

}  // namespace

TEST_CASE("the corpus reader: raw, gzip and zip give the same bytes and the 90/5/5 split") {
  fs::path d = scratch();
  std::vector<uint8_t> data = text_bytes(10007);
  write_bytes(d / "c.txt", data);
  write_gzip(d / "c.txt.gz", data);
  write_bytes(d / "c.zip", make_zip("c.txt", data));
  for (const char* name : {"c.txt", "c.txt.gz", "c.zip"}) {
    CAPTURE(name);
    enwik8::Corpus c = enwik8::load_corpus((d / name).string(), "auto");
    CHECK(c.bytes == data);
    CHECK(c.train_end == 9006);  // 10007 * 90 / 100
    CHECK(c.valid_end == 9506);
    CHECK(c.split("train").size() + c.split("valid").size() + c.split("test").size() == data.size());
    CHECK(c.description.find("train 9006, valid 500, test 501") != std::string::npos);
  }
  fs::remove_all(d);
}

TEST_CASE("the corpus reader reports broken and wrong files") {
  fs::path d = scratch();
  std::vector<uint8_t> data = text_bytes(5000);
  check_error([&] { enwik8::load_corpus((d / "missing").string()); }, "cannot open");
  // Not Enwik8: the size is wrong, and the message says so and what to do.
  write_bytes(d / "enwik8", data);
  check_error([&] { enwik8::load_corpus((d / "enwik8").string(), "enwik8"); }, "this is not Enwik8: it holds 5000 bytes");
  check_error([&] { enwik8::load_corpus((d / "enwik8").string(), "enwik9"); }, "--dataset must be");
  // A truncated gzip.
  write_gzip(d / "t.gz", data);
  std::vector<uint8_t> gz = files::read_file_bytes((d / "t.gz").string());
  gz.resize(gz.size() / 2);
  write_bytes(d / "t.gz", gz);
  check_error([&] { enwik8::load_corpus((d / "t.gz").string()); }, "corrupt or truncated gzip");
  // A zip with a wrong CRC, and a truncated zip.
  write_bytes(d / "bad.zip", make_zip("x", data, /*corrupt_crc=*/true));
  check_error([&] { enwik8::load_corpus((d / "bad.zip").string()); }, "CRC-32 mismatch");
  std::vector<uint8_t> z = make_zip("x", data);
  std::vector<uint8_t> cut(z.begin(), z.begin() + static_cast<long>(z.size() / 2));
  write_bytes(d / "cut.zip", cut);
  check_error([&] { enwik8::load_corpus((d / "cut.zip").string()); }, "zip");
  // Too small to split.
  write_bytes(d / "tiny", text_bytes(10));
  check_error([&] { enwik8::load_corpus((d / "tiny").string()); }, "too small");
  fs::remove_all(d);
}

TEST_CASE("an Enwik8-shaped file (100,000,000 bytes, zipped) gets the standard split") {
  fs::path d = scratch();
  std::vector<uint8_t> data(static_cast<size_t>(enwik8::kEnwik8Bytes), 'a');
  for (size_t i = 0; i < data.size(); i += 4099) data[i] = 'b';
  write_bytes(d / "enwik8.zip", make_zip("enwik8", data));
  data = {};
  enwik8::Corpus c = enwik8::load_corpus((d / "enwik8.zip").string(), "enwik8");
  CHECK(c.bytes.size() == 100000000u);
  CHECK(c.train_end == 90000000);
  CHECK(c.valid_end == 95000000);
  CHECK(c.description.find("Enwik8") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("the embedded corpus is there") {
  enwik8::Corpus c = enwik8::embedded_corpus();
  CHECK(c.bytes.size() > 100000);
  std::string head(c.bytes.begin(), c.bytes.begin() + 200);
  CHECK(head.find("aft") != std::string::npos);
}

TEST_CASE("bits per character of a known distribution, every byte scored once") {
  // A "model" whose prediction ignores the input: p(byte) = softmax(l) with fixed logits l.
  std::vector<double> l(256);
  for (int i = 0; i < 256; ++i) l[i] = 0.01 * i - (i % 7 == 0 ? 3.0 : 0.0);
  double mx = *std::max_element(l.begin(), l.end()), z = 0;
  for (double v : l) z += std::exp(v - mx);
  Tensor lt = from_vector<double>(l, {256});
  auto forward = [&](const Tensor& x) {
    return lt.reshape({1, 1, 256}).expand({x.size(0), x.size(1), 256}).contiguous();
  };
  std::vector<uint8_t> bytes = text_bytes(1000);
  for (size_t i = 0; i < bytes.size(); i += 13) bytes[i] = static_cast<uint8_t>(i % 256);
  double want = 0;
  for (size_t i = 1; i < bytes.size(); ++i) want += -(l[bytes[i]] - mx - std::log(z)) / std::log(2.0);
  want /= static_cast<double>(bytes.size() - 1);
  for (int64_t stride : {1, 7, 32, 64}) {
    for (int64_t ctx : {64, 2000}) {
      CAPTURE(stride);
      CAPTURE(ctx);
      enwik8::BpcResult r = enwik8::bits_per_char(forward, ctx, bytes, kCPU, {.stride = stride, .batch = 3});
      CHECK(r.count == 999);
      CHECK(r.bpc == doctest::Approx(want).epsilon(1e-12));
    }
  }
  // Uniform logits: exactly 8 bits per byte.
  auto uniform = [](const Tensor& x) { return zeros({x.size(0), x.size(1), 256}, kFloat64); };
  CHECK(enwik8::bits_per_char(uniform, 16, bytes, kCPU, {}).bpc == doctest::Approx(8.0).epsilon(1e-12));
}

TEST_CASE("sampling: temperature and top-k shape the distribution") {
  Generator g(3);
  std::vector<double> l(256, 0.0);
  l[65] = 5.0;
  l[66] = 4.0;
  int hits65 = 0;
  for (int i = 0; i < 400; ++i) {
    int b = enwik8::sample_logits(l, 1.0, 2, g);
    CHECK((b == 65 || b == 66));  // top-2 only
    hits65 += b == 65;
  }
  CHECK(hits65 > 250);  // p(65) = e / (1 + e) = 0.73
  // A low temperature is nearly greedy.
  for (int i = 0; i < 50; ++i) CHECK(enwik8::sample_logits(l, 0.01, 0, g) == 65);
}

TEST_CASE("training lowers the loss; sampling matches the full forward") {
  Generator g(4);
  nn::AFTLMConfig c;
  c.context = 16;
  c.dim = 16;
  c.layers = 1;
  c.mlp_hidden = 32;
  c.mixer.variant = "local";
  c.mixer.window = 4;
  c.mixer.bias = {nn::BiasKind::Factorized, 4};
  nn::AFTLM model(c, &g);
  nn::AdamW opt(nn::single_group(model), {.lr = 1e-2, .weight_decay = 0.0});
  std::vector<uint8_t> data = text_bytes(2000);
  auto batch_loss = [&]() {
    Tensor starts = randint(0, 2000 - 17, {8}, kInt64, &g);
    std::vector<int64_t> x, y;
    for (int64_t s : starts.to_vector<int64_t>())
      for (int64_t t = 0; t < 16; ++t) {
        x.push_back(data[s + t]);
        y.push_back(data[s + t + 1]);
      }
    return cross_entropy(model.forward(from_vector<int64_t>(x, {8, 16})).reshape({128, 256}), from_vector<int64_t>(y, {128}));
  };
  double first = batch_loss().item();
  for (int i = 0; i < 60; ++i) {
    Tensor loss = batch_loss();
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  double last = batch_loss().item();
  MESSAGE("loss ", first, " -> ", last);
  CHECK(first > 5.0);
  CHECK(last < 2.5);
  // The sampler's next-byte distribution (running sums) equals the full forward's.
  model.eval();
  autograd::NoGradGuard ng;
  std::vector<int64_t> prompt(data.begin(), data.begin() + 12);
  Tensor full = model.forward(from_vector<int64_t>(prompt, {1, 12}));
  nn::AFTLM::Decoder dec;
  for (int64_t t = 0; t < 12; ++t) {
    Tensor step = model.forward_step(from_vector<int64_t>({prompt[t]}, {1}), dec);
    check_close(softmax(step, -1), softmax(full.select(1, t), -1), 1e-5, 1e-6, "next-byte distribution");
  }
}
