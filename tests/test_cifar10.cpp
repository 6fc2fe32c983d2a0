// tests/test_cifar10.cpp: the image model's code (examples/cifar10 and the shared tar and PNG
// code of examples/common): the CIFAR-10 reader on good, truncated and mis-sized files and on
// tarballs written here (tar headers by hand), bits per dimension of a known distribution, the
// augmentation, incremental sampling against the full forward pass, micro-batched gradients, and
// PNG files read back with libpng.
#include <png.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "../examples/common/files.h"
#include "../examples/common/png.h"
#include "../examples/common/sampling.h"
#include "../examples/common/tar.h"
#include "../examples/cifar10/bpd.h"
#include "../examples/cifar10/data.h"
#include "../examples/cifar10/train.h"
#include "archive_writers.h"
#include "example_helpers.h"
#include "helpers.h"

using namespace aft;
using namespace aft::test;
using namespace aft::cifar10;
namespace fs = std::filesystem;

namespace {

fs::path scratch() { return scratch_dir("cifar10"); }

// n records in the file format, their content a function of (batch, record, byte): record r of
// batch k has label (k + r) % 10 and plane byte j = (7·k + 3·r + j) % 256.
std::vector<uint8_t> make_records(int k, int n) {
  std::vector<uint8_t> b;
  for (int r = 0; r < n; ++r) {
    b.push_back(static_cast<uint8_t>((k + r) % 10));
    for (int j = 0; j < kDims; ++j) b.push_back(static_cast<uint8_t>((7 * k + 3 * r + j) % 256));
  }
  return b;
}

// Checks image r of `im` against record r of make_records(k, .): sub-pixel (y, x, c) is the
// plane byte c·1024 + 32·y + x.
void check_image(const Images& im, int64_t i, int k, int r) {
  CHECK(im.labels[i] == (k + r) % 10);
  bool same = true;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c)
        same = same && im.image(i)[3 * (32 * y + x) + c] == (7 * k + 3 * r + c * 1024 + 32 * y + x) % 256;
  CHECK(same);
}

// A data set of `batches` training batches: `train` training images and `test` test images.
void check_counts(const Dataset& ds, int64_t batches, int64_t train, int64_t test) {
  CHECK(ds.train_batches == batches);
  REQUIRE(ds.train.size() == train);
  REQUIRE(ds.test.size() == test);
}

// The CIFAR-10 tarball as distributed (in miniature): a directory entry, the batches, extras.
std::vector<uint8_t> make_tarball(bool with_test, int train_batches) {
  TarWriter t;
  t.dir("cifar-10-batches-bin/");
  for (int k = 1; k <= train_batches; ++k)
    t.file("cifar-10-batches-bin/data_batch_" + std::to_string(k) + ".bin", make_records(k, 3));
  std::string meta = "airplane\nautomobile\n";
  t.file("cifar-10-batches-bin/batches.meta.txt", std::vector<uint8_t>(meta.begin(), meta.end()));
  if (with_test) t.file("cifar-10-batches-bin/test_batch.bin", make_records(0, 4));
  t.file("cifar-10-batches-bin/readme.html", std::vector<uint8_t>(700, 'x'));
  return t.finish();
}

}  // namespace

TEST_CASE("the reader: a directory with some of the training batches") {
  fs::path d = scratch() / "dir";
  fs::create_directories(d);
  write_bytes(d / "data_batch_1.bin", make_records(1, 3));
  write_bytes(d / "data_batch_3.bin", make_records(3, 2));
  write_bytes(d / "test_batch.bin", make_records(0, 4));
  write_bytes(d / "batches.meta.txt", {'a', '\n'});
  Dataset ds = load_cifar10(d.string());
  check_counts(ds, 2, 5, 4);
  check_image(ds.train, 0, 1, 0);
  check_image(ds.train, 2, 1, 2);
  check_image(ds.train, 3, 3, 0);
  check_image(ds.train, 4, 3, 1);
  for (int r = 0; r < 4; ++r) check_image(ds.test, r, 0, r);
  MESSAGE(ds.description);
  CHECK(ds.description.find("5 training images (2 of 5 batches: data_batch_1, data_batch_3), 4 test images") !=
        std::string::npos);
  // The parent directory (holding cifar-10-batches-bin/) works too; test-only loading skips training.
  fs::path parent = d.parent_path() / "parent";
  fs::create_directories(parent);
  fs::rename(d, parent / "cifar-10-batches-bin");
  Dataset ds2 = load_cifar10(parent.string(), false);
  CHECK(ds2.train.size() == 0);
  CHECK(ds2.test.pixels == ds.test.pixels);
  fs::remove_all(scratch());
}

TEST_CASE("the reader: truncated, mis-sized and missing files are errors naming the file") {
  fs::path d = scratch() / "bad";
  fs::create_directories(d);
  write_bytes(d / "test_batch.bin", make_records(0, 2));
  // No training batch at all.
  check_error([&] { load_cifar10(d.string()); }, "no training batch (data_batch_1.bin");
  // A truncated batch: two records and 100 bytes.
  std::vector<uint8_t> cut = make_records(1, 3);
  cut.resize(2 * kRecord + 100);
  write_bytes(d / "data_batch_1.bin", cut);
  check_error([&] { load_cifar10(d.string()); },
              "data_batch_1.bin: 6246 bytes is not a whole number of 3,073-byte CIFAR-10 records (2 records and 100 bytes over)");
  // An empty file, and one with a record too many bytes.
  write_bytes(d / "data_batch_1.bin", {});
  check_error([&] { load_cifar10(d.string()); }, "data_batch_1.bin: 0 bytes is not a whole number");
  std::vector<uint8_t> extra = make_records(1, 1);
  extra.push_back(0);
  write_bytes(d / "data_batch_1.bin", extra);
  check_error([&] { load_cifar10(d.string()); }, "data_batch_1.bin: 3074 bytes");
  // A label out of range: not CIFAR-10.
  std::vector<uint8_t> bad_label = make_records(1, 2);
  bad_label[kRecord] = 42;
  write_bytes(d / "data_batch_1.bin", bad_label);
  check_error([&] { load_cifar10(d.string()); }, "data_batch_1.bin: record 1 has label 42");
  // A broken test batch is named too.
  write_bytes(d / "data_batch_1.bin", make_records(1, 1));
  write_bytes(d / "test_batch.bin", std::vector<uint8_t>(5000, 1));
  check_error([&] { load_cifar10(d.string()); }, "test_batch.bin: 5000 bytes is not a whole number");
  // No test batch.
  fs::remove(d / "test_batch.bin");
  check_error([&] { load_cifar10(d.string()); }, "no test_batch.bin (the CIFAR-10 test batch)");
  check_error([&] { load_cifar10((d / "nothing").string()); }, "no such file or directory");
  check_error([&] { load_cifar10((d / "data_batch_1.bin").string()); }, "give the directory");
  check_error([&] { load_cifar10(""); }, "no CIFAR-10 data given");
  fs::remove_all(scratch());
}

TEST_CASE("the reader: the distributed tarball, gzipped or not") {
  fs::path d = scratch();
  std::vector<uint8_t> tar = make_tarball(true, 2);
  write_bytes(d / "cifar-10-binary.tar", tar);
  write_gzip(d / "cifar-10-binary.tar.gz", tar);
  for (const char* name : {"cifar-10-binary.tar", "cifar-10-binary.tar.gz"}) {
    CAPTURE(name);
    Dataset ds = load_cifar10((d / name).string());
    check_counts(ds, 2, 6, 4);
    check_image(ds.train, 0, 1, 0);
    check_image(ds.train, 5, 2, 2);
    check_image(ds.test, 3, 0, 3);
    CHECK(ds.description.find("6 training images (2 of 5 batches") != std::string::npos);
  }
  // No test batch in the archive: the error names the archive and lists what it holds.
  write_gzip(d / "notest.tar.gz", make_tarball(false, 1));
  check_error([&] { load_cifar10((d / "notest.tar.gz").string()); },
              "notest.tar.gz: the archive has no test_batch.bin (the CIFAR-10 test batch); it holds 3 files: "
              "cifar-10-batches-bin/data_batch_1.bin");
  // A truncated tarball (cut inside the test batch), gzipped or not.
  std::vector<uint8_t> cut(tar.begin(), tar.end() - 2000);
  write_bytes(d / "cut.tar", cut);
  check_error([&] { load_cifar10((d / "cut.tar").string()); }, "cut.tar: truncated tar archive");
  write_gzip(d / "cut2.tar.gz", std::vector<uint8_t>(tar.begin(), tar.begin() + 5000));
  check_error([&] { load_cifar10((d / "cut2.tar.gz").string()); }, "cut2.tar.gz: truncated tar archive");
  std::vector<uint8_t> gz = files::read_file_bytes((d / "cifar-10-binary.tar.gz").string());
  write_bytes(d / "cutgz.tar.gz", std::vector<uint8_t>(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
  check_error([&] { load_cifar10((d / "cutgz.tar.gz").string()); }, "cutgz.tar.gz: corrupt or truncated gzip data");
  // Not a tar archive at all, and a corrupted header.
  write_gzip(d / "text.gz", std::vector<uint8_t>(2000, 'a'));
  check_error([&] { load_cifar10((d / "text.gz").string()); }, "text.gz: not a tar archive");
  std::vector<uint8_t> flipped = tar;
  flipped[512 + 3] ^= 1;  // a byte of the second header's name
  write_bytes(d / "flipped.tar", flipped);
  check_error([&] { load_cifar10((d / "flipped.tar").string()); }, "header checksum mismatch at byte 512");
  fs::remove_all(d);
}

TEST_CASE("the tar reader: ustar prefixes, GNU long names, skipped members") {
  fs::path d = scratch();
  TarWriter t;
  t.file("short.txt", {'h', 'i'});
  t.file("b.bin", {1, 2, 3}, "some/prefix");
  std::string longname = "dir/" + std::string(120, 'n') + "/test_batch.bin";
  t.long_name(longname, make_records(0, 1));
  t.file("skipped", std::vector<uint8_t>(1000, 9));
  write_bytes(d / "t.tar", t.finish());
  std::vector<files::TarMember> m =
      files::read_tar((d / "t.tar").string(), [](const std::string& name, uint64_t) { return name != "skipped"; });
  REQUIRE(m.size() == 4);
  CHECK(m[0].name == "short.txt");
  CHECK(m[0].data == std::vector<uint8_t>{'h', 'i'});
  CHECK(m[1].name == "some/prefix/b.bin");
  CHECK(m[1].data == std::vector<uint8_t>{1, 2, 3});
  CHECK(m[2].name == longname);
  CHECK(m[2].size == static_cast<uint64_t>(kRecord));
  CHECK(m[3].name == "skipped");
  CHECK(m[3].size == 1000);
  CHECK(m[3].data.empty());
  CHECK(files::base_name(m[2].name) == "test_batch.bin");
  fs::remove_all(d);
}

TEST_CASE("bits per dimension of a known distribution, and per channel") {
  // A "model" ignoring its input: sub-pixel t has p = softmax(l_{t mod 3}) over 256 intensities,
  // plus an SOS logit (the 257th) that must not count.
  std::vector<double> l(3 * 257);
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 257; ++v) l[c * 257 + v] = v == 256 ? 5.0 : 0.01 * v * (c + 1) - (v % (5 + c) == 0 ? 2.0 : 0.0);
  double logz[3];
  for (int c = 0; c < 3; ++c) {
    double z = 0;
    for (int v = 0; v < 256; ++v) z += std::exp(l[c * 257 + v]);
    logz[c] = std::log(z);
  }
  Tensor lt = from_vector<double>(l, {1, 1, 3, 257});
  auto forward = [&](const Tensor& x) {
    CHECK(x.size(1) == kDims);
    CHECK(x.at<int64_t>({0, 0}) == kSOS);  // the input starts with SOS
    return lt.expand({x.size(0), kDims / 3, 3, 257}).reshape({x.size(0), kDims, 257}).contiguous();
  };
  Images im;
  Generator g(5);
  for (int64_t v : randint(0, 256, {7 * kDims}, kInt64, &g).to_vector<int64_t>()) im.pixels.push_back(static_cast<uint8_t>(v));
  im.labels.assign(7, 0);
  double want = 0, want_c[3] = {0, 0, 0};
  for (int64_t i = 0; i < 5; ++i)  // max_images = 5
    for (int64_t t = 0; t < kDims; ++t) {
      int c = static_cast<int>(t % 3);
      double bits = -(l[c * 257 + im.image(i)[t]] - logz[c]) / std::log(2.0);
      want += bits;
      want_c[c] += bits;
    }
  for (int64_t batch : {1, 2, 8}) {
    CAPTURE(batch);
    BpdResult r = bits_per_dim(forward, im, kCPU, {.batch = batch, .max_images = 5});
    CHECK(r.images == 5);
    CHECK(r.bpd == doctest::Approx(want / (5 * kDims)).epsilon(1e-12));
    for (int c = 0; c < 3; ++c) CHECK(r.channel_bpd[c] == doctest::Approx(want_c[c] / (5 * 1024)).epsilon(1e-12));
  }
  // Uniform over the 256 intensities: exactly 8 bits per dimension, whatever the images.
  auto uniform = [](const Tensor& x) { return zeros({x.size(0), x.size(1), 256}, kFloat64); };
  BpdResult u = bits_per_dim(uniform, im, kCPU, {.batch = 3});
  CHECK(u.images == 7);
  CHECK(u.bpd == doctest::Approx(8.0).epsilon(1e-12));
  CHECK(u.channel_bpd[1] == doctest::Approx(8.0).epsilon(1e-12));
}

TEST_CASE("augmentation: flip, then one shift for the whole image, clipped; deterministic per seed") {
  Generator g(11);
  std::vector<uint8_t> img(kDims);
  for (int64_t t = 0; t < kDims; ++t) img[t] = static_cast<uint8_t>((t * 37) % 256);  // 0 and 255 included
  for (bool flip : {false, true})
    for (int shift : {-10, -3, 0, 7, 10}) {
      CAPTURE(flip);
      CAPTURE(shift);
      std::vector<uint8_t> out(kDims);
      augment(img.data(), flip, shift, out.data());
      bool ok = true;
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          for (int c = 0; c < 3; ++c) {
            int src = img[3 * (32 * y + (flip ? 31 - x : x)) + c] + shift;
            ok = ok && out[3 * (32 * y + x) + c] == std::min(255, std::max(0, src));
          }
      CHECK(ok);
    }
  // make_batch draws B flips, then B shifts, from the generator.
  Images im;
  im.pixels = img;
  std::vector<uint8_t> flat(kDims, 128);  // flat grey: the shift shows as value − 128
  im.pixels.insert(im.pixels.end(), flat.begin(), flat.end());
  im.labels = {0, 1};
  std::vector<int64_t> idx = {0, 1, 0, 1};
  Generator a(3), b(3), c(4);
  Batch ba = make_batch(im, idx, &a);
  std::vector<int64_t> flips = randint(0, 2, {4}, kInt64, &b).to_vector<int64_t>();
  std::vector<int64_t> shifts = randint(-10, 11, {4}, kInt64, &b).to_vector<int64_t>();
  for (int i = 0; i < 4; ++i) {
    std::vector<uint8_t> want(kDims);
    augment(im.image(idx[i]), flips[i] != 0, static_cast<int>(shifts[i]), want.data());
    CHECK(std::equal(want.begin(), want.end(), ba.images.begin() + i * kDims));
  }
  Batch bc = make_batch(im, idx, &c);
  Generator a2(3);
  CHECK(make_batch(im, idx, &a2).images == ba.images);  // same seed, same batch
  CHECK(bc.images != ba.images);                        // another seed, another batch
  // Inputs are SOS then the image shifted right by one; targets are the image.
  for (int i = 0; i < 4; ++i) {
    CHECK(ba.inputs[i * kDims] == kSOS);
    bool ok = true;
    for (int64_t t = 0; t < kDims; ++t) {
      ok = ok && ba.targets[i * kDims + t] == ba.images[i * kDims + t];
      if (t > 0) ok = ok && ba.inputs[i * kDims + t] == ba.images[i * kDims + t - 1];
    }
    CHECK(ok);
  }
  // Over many draws: every shift in [−10, 10] occurs, nothing outside; both flips occur.
  Images two;  // a flat image, and one whose left half is darker than its right
  two.pixels.assign(2 * kDims, 128);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 16; ++x)
      for (int ch = 0; ch < 3; ++ch) two.pixels[kDims + 3 * (32 * y + x) + ch] = 100;
  two.labels = {0, 0};
  std::vector<int64_t> many(600);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>(i % 2);
  Batch bm = make_batch(two, many, &g);
  std::vector<int> seen(21, 0);
  int flipped = 0, kept = 0;
  for (size_t i = 0; i < many.size(); i += 2) {
    const uint8_t* flat_out = bm.images.data() + i * kDims;
    int s = flat_out[0] - 128;
    REQUIRE(s >= -10);
    REQUIRE(s <= 10);
    ++seen[s + 10];
    bool all_same = true;
    for (int64_t t = 0; t < kDims; ++t) all_same = all_same && flat_out[t] == flat_out[0];
    CHECK(all_same);  // one shift for the whole image
    const uint8_t* half = bm.images.data() + (i + 1) * kDims;
    (half[0] < half[3 * 31] ? kept : flipped) += 1;
  }
  for (int s = 0; s < 21; ++s) CHECK(seen[s] > 0);
  CHECK(flipped > 100);
  CHECK(kept > 100);
}

TEST_CASE("incremental sampling gives the full forward pass's next-sub-pixel distribution") {
  // AFT-local (the default) over the whole image, crossing the window many times; AFT-simple and
  // AFT-full (O(t) a step) over the first 600 positions.
  for (const char* variant : {"local", "simple", "full"}) {
    CAPTURE(variant);
    const bool whole = std::string(variant) == "local";
    const int64_t B = 2, T = whole ? kDims : 600;
    Generator g(21);
    nn::AFTLM model(image_model_config({.variant = variant, .dim = 16, .layers = 2, .mlp_hidden = 32, .window = 64,
                                        .bias_dim = 8}),
                    &g);
    model.eval();
    autograd::NoGradGuard ng;
    std::vector<uint8_t> imgs;
    for (int64_t v : randint(0, 256, {B * kDims}, kInt64, &g).to_vector<int64_t>()) imgs.push_back(static_cast<uint8_t>(v));
    std::vector<int64_t> x = shift_right(imgs, B);
    Tensor xt = from_vector<int64_t>(x, {B, kDims}).narrow(1, 0, T).contiguous();
    Tensor full = softmax(intensity_logits(model.forward(xt)), -1);
    // Step by step (both images at once).
    nn::AFTLM::Decoder dec;
    std::vector<Tensor> steps;
    for (int64_t t = 0; t < T; ++t) {
      Tensor tok = from_vector<int64_t>({x[t], x[kDims + t]}, {B});
      steps.push_back(softmax(intensity_logits(model.forward_step(tok, dec)), -1));
    }
    check_close(stack(steps, 1), full, 1e-5, 1e-6, "next-sub-pixel distribution");
    if (!whole) continue;
    // generate(): completing the last 4 sub-pixels draws, at each of them, from the full forward
    // pass's distribution with the same uniforms.
    const int64_t keep = kDims - 4;
    std::vector<uint8_t> prefix;
    for (int64_t b = 0; b < B; ++b) prefix.insert(prefix.end(), imgs.begin() + b * kDims, imgs.begin() + b * kDims + keep);
    Generator sg(9), ng2(9);
    std::vector<uint8_t> got = generate(model, prefix, B, keep, kCPU, sg, {});
    CHECK(std::equal(prefix.begin(), prefix.begin() + keep, got.begin()));  // the given part is kept
    std::vector<uint8_t> want = imgs;
    for (int64_t t = keep; t < kDims; ++t) {
      Tensor logits = intensity_logits(model.forward(from_vector<int64_t>(shift_right(want, B), {B, kDims})));
      std::vector<int64_t> s = sampling::sample_rows(logits.select(1, t).contiguous(), 1.0, 0, ng2);
      for (int64_t b = 0; b < B; ++b) want[b * kDims + t] = static_cast<uint8_t>(s[b]);
    }
    CHECK(got == want);
  }
}

TEST_CASE("unconditional samples: in range, reproducible per seed, temperature and top-k") {
  Generator g(2);
  nn::AFTLM model(image_model_config({.dim = 16, .layers = 1, .mlp_hidden = 32, .window = 32, .bias_dim = 8}), &g);
  model.eval();
  Generator s1(5), s2(5), s3(6);
  SampleStats st;
  std::vector<uint8_t> a = generate(model, {}, 3, 0, kCPU, s1, {.top_k = 3}, &st);
  CHECK(st.images == 3);
  CHECK(st.steps == kDims);
  CHECK(a.size() == static_cast<size_t>(3 * kDims));
  CHECK(generate(model, {}, 3, 0, kCPU, s2, {.top_k = 3}) == a);
  CHECK(generate(model, {}, 3, 0, kCPU, s3, {.top_k = 3}) != a);
  check_error([&] { generate(model, {}, 3, 5, kCPU, s3, {}); }, "prefix holds 0 bytes");
  check_error([&] { generate(model, {}, 3, 0, kCPU, s3, {.temperature = 0}); }, "temperature must be > 0");
}

TEST_CASE("micro-batches give the whole batch's gradients; training lowers the loss") {
  Generator g(8);
  auto make = [] {
    Generator init(30);
    return std::make_shared<nn::AFTLM>(
        image_model_config({.dim = 16, .layers = 1, .mlp_hidden = 32, .window = 16, .bias_dim = 4}), &init);
  };
  auto m1 = make(), m2 = make();
  Images im;
  for (int64_t v : randint(0, 256, {4 * kDims}, kInt64, &g).to_vector<int64_t>()) im.pixels.push_back(static_cast<uint8_t>(v));
  im.labels.assign(4, 0);
  std::vector<int64_t> idx = {0, 1, 2, 3};
  Batch b = make_batch(im, idx, nullptr);
  double l1 = train_batch(*m1, b, 4, 0, kCPU);
  double l2 = train_batch(*m2, b, 4, 3, kCPU);  // micro-batches of 3 and 1
  CHECK(l1 == doctest::Approx(l2).epsilon(1e-6));
  auto p1 = m1->named_parameters(), p2 = m2->named_parameters();
  for (size_t i = 0; i < p1.size(); ++i) {
    REQUIRE(p1[i].tensor.grad().defined());
    check_close(p2[i].tensor.grad(), p1[i].tensor.grad(), 1e-4, 1e-6, p1[i].name);
  }
  // Weight decay only on the linear layers' weights.
  nn::AdamW opt = make_optimizer(*m1, 1e-2, 0.1);
  for (const nn::ParamGroup& gr : opt.groups())
    for (const std::string& n : gr.names) {
      bool linear_weight = n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0 && n.find("ln") == std::string::npos &&
                           n.find("emb") == std::string::npos;
      CAPTURE(n);
      CHECK((gr.name == "decay") == linear_weight);
    }
  // A flat image (every sub-pixel 200) is quickly learned.
  Images flat;
  flat.pixels.assign(2 * kDims, 200);
  flat.labels = {0, 0};
  std::vector<int64_t> two = {0, 1};
  Batch fb = make_batch(flat, two, nullptr);
  opt.zero_grad();
  double first = 0, last = 0;
  for (int s = 0; s < 15; ++s) {
    last = train_batch(*m1, fb, 2, 0, kCPU);
    if (s == 0) first = last;
    opt.step();
    opt.zero_grad();
  }
  MESSAGE("loss ", first, " -> ", last);
  CHECK(first > 5.0);  // about ln 256 = 5.55 at the start
  CHECK(last < first - 1.0);
}

TEST_CASE("PNG: written, then read back with libpng; tile grids") {
  fs::path d = scratch();
  png::Image img;
  img.width = 5;
  img.height = 3;
  img.channels = 3;
  for (int i = 0; i < 45; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 5 + 1));
  std::string path = (d / "a.png").string();
  png::write_png(path, img);
  // libpng reads it back (its simplified API, independently of png::read_png).
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_file(&im, path.c_str()));
  CHECK(im.width == 5);
  CHECK(im.height == 3);
  CHECK((im.format & PNG_FORMAT_FLAG_COLOR) != 0);
  im.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> back(PNG_IMAGE_SIZE(im));
  REQUIRE(png_image_finish_read(&im, nullptr, back.data(), 0, nullptr));
  CHECK(back == img.pixels);
  png::Image r = png::read_png(path);
  CHECK(r.width == 5);
  CHECK(r.height == 3);
  CHECK(r.pixels == img.pixels);
  // Gray, and RGBA read as RGB over black.
  png::Image gray{4, 2, 1, {0, 50, 100, 150, 200, 250, 255, 1}};
  png::write_png((d / "g.png").string(), gray);
  CHECK(png::read_png((d / "g.png").string(), 1).pixels == gray.pixels);
  png::Image rgba{1, 1, 4, {200, 100, 50, 255}};
  png::write_png((d / "c.png").string(), rgba);
  CHECK(png::read_png((d / "c.png").string(), 3).pixels == std::vector<uint8_t>{200, 100, 50});
  // Errors name the file.
  check_error([&] { png::write_png((d / "x.png").string(), png::Image{2, 2, 3, {1, 2, 3}}); }, "3 bytes of pixels for a 2 x 2 x 3 image");
  check_error([&] { png::write_png((d / "x.png").string(), png::Image{2, 2, 2, std::vector<uint8_t>(8)}); },
              "channels must be 1, 3 or 4");
  write_bytes(d / "not.png", {'h', 'e', 'l', 'l', 'o'});
  check_error([&] { png::read_png((d / "not.png").string()); }, "not.png");
  check_error([&] { png::write_png((d / "no" / "dir.png").string(), img); }, "dir.png");
  // A grid: 3 tiles of 2 x 2 in 2 columns, scale 2, pad 1, background 9.
  std::vector<uint8_t> t0(12, 10), t1(12, 20), t2(12);
  for (int i = 0; i < 12; ++i) t2[i] = static_cast<uint8_t>(30 + i);
  png::Image g = png::tile_grid({t0.data(), t1.data(), t2.data()}, 2, 2, 3, 2, 2, 1, 9);
  CHECK(g.width == 2 * 4 + 3);
  CHECK(g.height == 2 * 4 + 3);
  auto px = [&](int64_t y, int64_t x, int c) { return g.pixels[(y * g.width + x) * 3 + c]; };
  CHECK(px(0, 0, 0) == 9);    // padding
  CHECK(px(1, 1, 0) == 10);   // tile 0
  CHECK(px(4, 4, 2) == 10);
  CHECK(px(5, 5, 0) == 9);    // between rows
  CHECK(px(1, 6, 1) == 20);   // tile 1
  // Tile 2 (row 1, column 0) at y 6..9, x 1..4: source pixel (y/2, x/2).
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) CHECK(px(6 + y, 1 + x, c) == t2[((y / 2) * 2 + x / 2) * 3 + c]);
  CHECK(px(7, 7, 0) == 9);    // the empty fourth cell
  png::write_png((d / "grid.png").string(), g);
  CHECK(png::read_png((d / "grid.png").string()).pixels == g.pixels);
  fs::remove_all(d);
}
