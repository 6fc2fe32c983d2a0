// tests/test_imagenet.cpp: the ImageNet example's code (examples/imagenet): JPEG decoding of good,
// grayscale, CMYK, truncated and non-JPEG files (made here with libjpeg's compressor); crop and
// resize geometry; determinism of augmentation per seed; the prefetching loader (every image
// once per epoch, the same batches whatever the worker count, seeking); the model's shapes and
// gradients at small sizes, evaluation at another size; stochastic depth; the metrics.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "../examples/imagenet/evaluate.h"
#include "../examples/imagenet/jpeg.h"
#include "../examples/imagenet/loader.h"
#include "../examples/imagenet/model.h"
#include "../examples/imagenet/transforms.h"
#include "example_helpers.h"
#include "helpers.h"
#include "nn/optim/optim.h"

using namespace aft;
using namespace aft::imagenet;
using namespace aft::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& tag) { return scratch_dir("imagenet_" + tag, true); }

// A smooth colour pattern [h, w, 3] (JPEG keeps it well), varied by `seed`.
std::vector<uint8_t> pattern(int w, int h, int seed = 0) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* q = &p[(static_cast<size_t>(y) * w + x) * 3];
      q[0] = static_cast<uint8_t>(40 + 150 * x / std::max(1, w - 1));
      q[1] = static_cast<uint8_t>(30 + 170 * y / std::max(1, h - 1));
      q[2] = static_cast<uint8_t>((60 + 37 * seed) % 200 + 20);
    }
  return p;
}

std::vector<uint8_t> rgb_jpeg(int w, int h, int seed = 0) { return encode_jpeg(pattern(w, h, seed).data(), w, h, 3, 95); }

std::vector<uint8_t> gray_jpeg(int w, int h) {
  std::vector<uint8_t> g(static_cast<size_t>(w) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) g[static_cast<size_t>(y) * w + x] = static_cast<uint8_t>(50 + 3 * x + y);
  return encode_jpeg(g.data(), w, h, 1, 95);
}

// A flat CMYK image; ink values 0..255, stored Adobe-style (255 − ink).
std::vector<uint8_t> cmyk_jpeg(int w, int h, int c, int m, int y, int k) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * 4);
  for (size_t i = 0; i < p.size(); i += 4) {
    p[i] = static_cast<uint8_t>(255 - c);
    p[i + 1] = static_cast<uint8_t>(255 - m);
    p[i + 2] = static_cast<uint8_t>(255 - y);
    p[i + 3] = static_cast<uint8_t>(255 - k);
  }
  return encode_jpeg(p.data(), w, h, 4, 95);
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) - double(b[i]));
  return s / static_cast<double>(a.size());
}

// The normalised value of an 8-bit channel value v.
float norm(float v, int c) { return (v / 255.0f - kImageNetMean[c]) / kImageNetStd[c]; }

}  // namespace

// ---- JPEG decoding

TEST_CASE("jpeg: RGB, grayscale and CMYK files decode to RGB") {
  std::vector<uint8_t> px = pattern(40, 30);
  std::vector<uint8_t> rgb = encode_jpeg(px.data(), 40, 30, 3, 95);
  JpegInfo info = read_jpeg_info(rgb.data(), rgb.size(), "rgb.jpg");
  CHECK(info.width == 40);
  CHECK(info.height == 30);
  CHECK(info.components == 3);
  DecodeResult d = decode_jpeg(rgb.data(), rgb.size(), "rgb.jpg");
  CHECK(d.image.width == 40);
  CHECK(d.image.height == 30);
  CHECK(d.warnings == 0);
  CHECK(mean_abs_diff(d.image.rgb, px) < 3.0);

  std::vector<uint8_t> gray = gray_jpeg(33, 17);
  CHECK(read_jpeg_info(gray.data(), gray.size(), "g").components == 1);
  DecodeResult g = decode_jpeg(gray.data(), gray.size(), "g");
  REQUIRE(g.image.rgb.size() == 33u * 17u * 3u);
  for (int y = 0; y < 17; ++y)
    for (int x = 0; x < 33; ++x) {
      CHECK(g.image.at(y, x, 0) == g.image.at(y, x, 1));
      CHECK(g.image.at(y, x, 1) == g.image.at(y, x, 2));
      CHECK(std::abs(int(g.image.at(y, x, 0)) - (50 + 3 * x + y)) <= 3);
    }

  // CMYK (written with jpeg_set_colorspace(JCS_CMYK) and an Adobe marker): red is magenta +
  // yellow ink; 50% black alone is mid grey; cyan alone is (0, 255, 255).
  struct Case { int c, m, y, k, r, g, b; };
  for (Case cs : {Case{0, 255, 255, 0, 255, 0, 0}, Case{0, 0, 0, 128, 127, 127, 127}, Case{255, 0, 0, 0, 0, 255, 255}}) {
    std::vector<uint8_t> j = cmyk_jpeg(16, 16, cs.c, cs.m, cs.y, cs.k);
    CHECK(read_jpeg_info(j.data(), j.size(), "cmyk").components == 4);
    DecodeResult c = decode_jpeg(j.data(), j.size(), "cmyk");
    CAPTURE(cs.c);
    CAPTURE(cs.k);
    CHECK(std::abs(int(c.image.at(8, 8, 0)) - cs.r) <= 3);
    CHECK(std::abs(int(c.image.at(8, 8, 1)) - cs.g) <= 3);
    CHECK(std::abs(int(c.image.at(8, 8, 2)) - cs.b) <= 3);
  }
}

TEST_CASE("jpeg: DCT scaling decodes at M/8 of the size") {
  std::vector<uint8_t> j = rgb_jpeg(100, 60);
  for (int m = 1; m <= 8; ++m) {
    DecodeResult d = decode_jpeg(j.data(), j.size(), "x", m);
    CHECK(d.image.width == scaled_size(100, m));
    CHECK(d.image.height == scaled_size(60, m));
    CHECK(d.info.width == 100);
  }
  CHECK(scaled_size(100, 1) == 13);  // ceil(12.5)
  CHECK(scaled_size(100, 4) == 50);
  // The smallest scale keeping the region at least the output size.
  CHECK(choose_dct_scale(224, 224, 64, 64) == 3);  // 224·3/8 = 84 >= 64 > 56
  CHECK(choose_dct_scale(512, 512, 64, 64) == 1);
  CHECK(choose_dct_scale(63, 200, 64, 64) == 8);   // too small even at full size
  CHECK(choose_dct_scale(128, 256, 64, 64) == 4);
  check_error([&] { decode_jpeg(j.data(), j.size(), "x", 9); }, "scale");
}

TEST_CASE("jpeg: truncated, corrupt, empty and non-JPEG data are errors naming the file") {
  std::vector<uint8_t> j = rgb_jpeg(48, 40);
  // Every prefix (cut anywhere before the end) is an error, never a crash or a grey-padded image.
  for (size_t n = 1; n < j.size(); n += (n < 700 ? 13 : 1)) {
    CAPTURE(n);
    check_error([&] { decode_jpeg(j.data(), n, "cut.jpg"); }, "cut.jpg: cannot decode JPEG");
  }
  check_error([&] { decode_jpeg(j.data(), j.size() / 2, "half.jpg"); }, "truncated");
  check_error([&] { decode_jpeg(j.data(), 0, "empty.jpg"); }, "empty.jpg: cannot decode JPEG: empty file");
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  check_error([&] { decode_jpeg(png.data(), png.size(), "disguised.JPEG"); }, "disguised.JPEG: cannot decode JPEG: Not a JPEG file");
  check_error([&] { read_jpeg_info(png.data(), png.size(), "p.JPEG"); }, "Not a JPEG file");
  // Corrupted bytes inside the header: an error or an image, never a crash (the loop runs
  // every header byte through a few values).
  for (size_t i = 2; i < std::min<size_t>(j.size(), 400); ++i)
    for (uint8_t v : {uint8_t(0x00), uint8_t(0xFF), uint8_t(0x7F)}) {
      std::vector<uint8_t> bad = j;
      bad[i] = v;
      try {
        DecodeResult d = decode_jpeg(bad.data(), bad.size(), "bad.jpg", 2);
        CHECK(d.image.rgb.size() == static_cast<size_t>(d.image.width) * d.image.height * 3);
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find("bad.jpg: cannot decode JPEG") != std::string::npos);
      }
    }
  check_error([] { decode_jpeg_file("/nonexistent/x.JPEG"); }, "/nonexistent/x.JPEG");
}

// ---- geometry and resampling

TEST_CASE("transforms: the evaluation centre crop is resize-shorter-side then centre") {
  // 300×200, S = 224: shorter side to 256, so the crop is 224·200/256 = 175 original pixels.
  CropBox b = center_crop(300, 200, 224);
  CHECK(b.w == doctest::Approx(175.0));
  CHECK(b.h == doctest::Approx(175.0));
  CHECK(b.x == doctest::Approx(62.5));
  CHECK(b.y == doctest::Approx(12.5));
  // S = 64: R = floor(64·256/224) = 73.
  CropBox c = center_crop(200, 400, 64);
  CHECK(c.w == doctest::Approx(64.0 * 200 / 73));
  CHECK(c.x == doctest::Approx((200 - 64.0 * 200 / 73) / 2));
  CHECK(c.y == doctest::Approx((400 - 64.0 * 200 / 73) / 2));
  // Ratio 1: the whole shorter side.
  CropBox d = center_crop(50, 80, 32, 1.0);
  CHECK(d.w == doctest::Approx(50.0));
  CHECK(d.y == doctest::Approx(15.0));
  check_error([] { center_crop(0, 10, 4); }, "center_crop");
}

TEST_CASE("transforms: random-resized crops stay in range and are deterministic per (seed, epoch, index)") {
  AugmentConfig cfg;
  int flips = 0, n = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    int W = 100 + static_cast<int>(i % 7) * 30, H = 120 + static_cast<int>(i % 5) * 20;
    ImageRng r1(7, 2, i), r2(7, 2, i);
    Augment a = random_resized_crop(W, H, cfg, r1), b = random_resized_crop(W, H, cfg, r2);
    CHECK(a.box.x == b.box.x);
    CHECK(a.box.y == b.box.y);
    CHECK(a.box.w == b.box.w);
    CHECK(a.flip == b.flip);
    CHECK(a.box.x >= 0);
    CHECK(a.box.y >= 0);
    CHECK(a.box.x + a.box.w <= W);
    CHECK(a.box.y + a.box.h <= H);
    double area = a.box.w * a.box.h / (double(W) * H), ratio = a.box.w / a.box.h;
    CHECK(area >= 0.08 * 0.9);
    CHECK(area <= 1.0);
    CHECK(ratio >= 0.75 * 0.9);
    CHECK(ratio <= 4.0 / 3.0 * 1.1);
    flips += a.flip;
    ++n;
  }
  CHECK(flips > n * 0.4);
  CHECK(flips < n * 0.6);
  // Another seed, epoch or index draws differently.
  ImageRng base(7, 2, 5), other_seed(8, 2, 5), other_epoch(7, 3, 5), other_index(7, 2, 6);
  double u = base.uniform();
  CHECK(other_seed.uniform() != u);
  CHECK(other_epoch.uniform() != u);
  CHECK(other_index.uniform() != u);
  // An extreme aspect ratio falls back to a centred crop of clamped aspect.
  ImageRng r(1, 0, 0);
  Augment f = random_resized_crop(1000, 10, cfg, r);
  CHECK(f.box.h == 10);
  CHECK(f.box.w == 13);  // round(10 · 4/3)
  CHECK(f.box.x == 493);
}

TEST_CASE("transforms: resampling: identity, constants, averaging, bilinear, flip") {
  Image img;
  img.width = 5;
  img.height = 4;
  img.rgb.resize(5 * 4 * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>((i * 37) % 256);
  // The whole image at its own size: every pixel as it is (normalised).
  std::vector<float> out(5 * 4 * 3), flipped(5 * 4 * 3);
  resample_normalize(img, {0, 0, 5, 4}, 5, 4, false, out.data());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) CHECK(out[(y * 5 + x) * 3 + c] == doctest::Approx(norm(img.at(y, x, c), c)).epsilon(1e-5));
  resample_normalize(img, {0, 0, 5, 4}, 5, 4, true, flipped.data());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) CHECK(flipped[(y * 5 + x) * 3 + c] == out[(y * 5 + (4 - x)) * 3 + c]);

  // A constant image stays constant for any box and size.
  Image flat;
  flat.width = 9;
  flat.height = 7;
  flat.rgb.assign(9 * 7 * 3, 200);
  std::vector<float> f(6 * 11 * 3);
  resample_normalize(flat, {1.3, 0.7, 6.1, 5.2}, 6, 11, false, f.data());
  for (size_t i = 0; i < f.size(); ++i) CHECK(f[i] == doctest::Approx(norm(200, static_cast<int>(i % 3))).epsilon(1e-5));

  // Halving a 1-pixel checkerboard: the tent of radius 2 centred between two pixels weighs
  // pixels at ±0.5 by 3/4 and at ±1.5 by 1/4, so inside the image (away from the clipped
  // edges) both colours get half the weight: 127.5.
  Image ck;
  ck.width = ck.height = 8;
  ck.rgb.resize(8 * 8 * 3);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x)
      for (int c = 0; c < 3; ++c) ck.rgb[(y * 8 + x) * 3 + c] = ((x + y) % 2) ? 255 : 0;
  std::vector<float> h(4 * 4 * 3);
  resample_normalize(ck, {0, 0, 8, 8}, 4, 4, false, h.data());
  for (int y = 1; y < 3; ++y)
    for (int x = 1; x < 3; ++x)
      for (int c = 0; c < 3; ++c) CHECK(h[(y * 4 + x) * 3 + c] == doctest::Approx(norm(127.5f, c)).epsilon(1e-5));
  // At the corner the clipped tent weighs (0, 0) [black] 0.75/1.75 · 0.75/1.75 + ... : check
  // against the separable formula: per axis, weights (0.75, 0.75, 0.25) / 1.75 on pixels 0..2.
  const double w3[3] = {0.75 / 1.75, 0.75 / 1.75, 0.25 / 1.75};
  double corner = 0;
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) corner += w3[y] * w3[x] * (((x + y) % 2) ? 255 : 0);
  CHECK(h[0] == doctest::Approx(norm(static_cast<float>(corner), 0)).epsilon(1e-5));

  // Enlarging [0, 255] (2×1) to 4×1 interpolates between pixel centres, edges clamped:
  // samples at 0.25, 0.75, 1.25, 1.75 -> 0, 63.75, 191.25, 255.
  Image two;
  two.width = 2;
  two.height = 1;
  two.rgb = {0, 0, 0, 255, 255, 255};
  std::vector<float> e(4 * 3);
  resample_normalize(two, {0, 0, 2, 1}, 4, 1, false, e.data());
  const float want[4] = {0, 63.75f, 191.25f, 255};
  for (int x = 0; x < 4; ++x) CHECK(e[x * 3] == doctest::Approx(norm(want[x], 0)).epsilon(1e-5));
}

TEST_CASE("transforms: the full pipeline is deterministic per seed, and evaluation has no randomness") {
  std::vector<uint8_t> j = rgb_jpeg(120, 90);
  TransformConfig t;
  t.size = 32;
  t.train = true;
  std::vector<float> a(32 * 32 * 3), b(a.size()), c(a.size());
  load_transformed(j.data(), j.size(), "x", t, 11, 0, 3, a.data());
  load_transformed(j.data(), j.size(), "x", t, 11, 0, 3, b.data());
  CHECK(a == b);
  int differ = 0;
  for (uint64_t seed = 12; seed < 16; ++seed) {
    load_transformed(j.data(), j.size(), "x", t, seed, 0, 3, c.data());
    differ += c != a;
  }
  CHECK(differ >= 3);
  t.train = false;
  load_transformed(j.data(), j.size(), "x", t, 1, 0, 0, a.data());
  load_transformed(j.data(), j.size(), "x", t, 2, 5, 9, b.data());
  CHECK(a == b);
  // The centre pixel of the evaluation crop is the image's centre colour (the pattern is smooth).
  std::vector<uint8_t> px = pattern(120, 90);
  for (int ch = 0; ch < 3; ++ch)
    CHECK(std::fabs(a[(16 * 32 + 16) * 3 + ch] - norm(px[(45 * 120 + 60) * 3 + ch], ch)) < 0.1);
}

// ---- data set and loader

namespace {

// root/train/{a_cls, b_cls, c_cls}: 7 good images (RGB of several sizes, grayscale, CMYK),
// a truncated one, a PNG named .JPEG, and a text file (ignored); classes.txt names two classes.
struct TinySet {
  fs::path root;
  int64_t good = 0;
  explicit TinySet(const std::string& tag) : root(scratch(tag)) {
    fs::path t = root / "train";
    write_bytes(t / "b_cls" / "1.JPEG", rgb_jpeg(40, 30, 1));
    write_bytes(t / "b_cls" / "2.jpg", gray_jpeg(24, 48));
    write_bytes(t / "b_cls" / "3.JPEG", cmyk_jpeg(20, 20, 0, 255, 255, 0));
    write_bytes(t / "a_cls" / "1.JPEG", rgb_jpeg(64, 64, 2));
    write_bytes(t / "a_cls" / "2.JPEG", rgb_jpeg(17, 90, 3));
    write_bytes(t / "c_cls" / "1.jpeg", rgb_jpeg(50, 50, 4));
    write_bytes(t / "c_cls" / "2.JPG", rgb_jpeg(33, 21, 5));
    good = 7;
    std::vector<uint8_t> cut = rgb_jpeg(60, 40, 6);
    cut.resize(cut.size() / 2);
    write_bytes(t / "a_cls" / "truncated.JPEG", cut);
    write_bytes(t / "c_cls" / "png.JPEG", {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0});
    write_bytes(t / "c_cls" / "notes.txt", {'h', 'i'});
    std::ofstream(root / "classes.txt") << "a_cls apple, Malus\nb_cls  banana\n\nnot-a-class whatever\n";
  }
  ~TinySet() { fs::remove_all(root); }
};

std::vector<Batch> drain(Loader& l) {
  std::vector<Batch> out;
  while (std::optional<Batch> b = l.next()) out.push_back(std::move(*b));
  return out;
}

}  // namespace

TEST_CASE("loader: class folders, names, and unreadable files skipped with a report") {
  TinySet s("scan");
  Dataset d = scan_image_folder(s.root.string(), "train");
  CHECK(d.classes == std::vector<std::string>{"a_cls", "b_cls", "c_cls"});
  CHECK(d.names == std::vector<std::string>{"apple", "banana", "c_cls"});
  CHECK(d.size() == 9);
  CHECK(d.ignored == 1);
  CHECK(d.labels == std::vector<int64_t>{0, 0, 0, 1, 1, 1, 2, 2, 2});
  CHECK(fs::path(d.paths[2]).filename() == "truncated.JPEG");
  CHECK(read_class_names((s.root / "nowhere").string(), {"n01440764", "n03888257", "x"}) ==
        std::vector<std::string>{"tench", "parachute", "x"});
  check_error([&] { scan_image_folder(s.root.string(), "val"); }, "not a directory");
  std::vector<std::string> other = {"a_cls", "b_cls"};
  check_error([&] { scan_image_folder(s.root.string(), "train", &other); }, "'c_cls' is not one of the model's 2 classes");

  std::FILE* log = std::tmpfile();
  LoaderConfig lc;
  lc.batch = 4;
  lc.transform.size = 16;
  lc.workers = 2;
  lc.max_batches = 3;
  lc.log = log;
  Loader l(d, lc);
  CHECK(l.batches_per_epoch() == 3);
  std::vector<Batch> bs = drain(l);
  REQUIRE(bs.size() == 3);
  std::vector<int64_t> seen;
  int64_t skipped = 0;
  for (const Batch& b : bs) {
    CHECK(b.images.shape() == Shape{b.labels.size(0), 16, 16, 3});
    for (int64_t i : b.indices) seen.push_back(i);
    skipped += b.skipped;
    std::vector<int64_t> y = b.labels.to_vector<int64_t>();
    for (size_t k = 0; k < y.size(); ++k) CHECK(y[k] == d.labels[static_cast<size_t>(b.indices[k])]);
    std::vector<float> v = b.images.to_vector<float>();
    for (float x : v) REQUIRE(std::isfinite(x));
  }
  CHECK(seen == std::vector<int64_t>{0, 1, 3, 4, 5, 6, 7});  // in order, without 2 (truncated) and 8 (PNG)
  CHECK(skipped == 2);
  std::vector<Loader::Failure> f = l.failures();
  REQUIRE(f.size() == 2);
  CHECK(fs::path(f[0].path).filename() == "truncated.JPEG");
  CHECK(f[0].reason.find("truncated") != std::string::npos);
  CHECK(f[1].reason.find("png.JPEG: cannot decode JPEG: Not a JPEG file") != std::string::npos);
  std::rewind(log);
  char buf[4096] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, log);
  std::fclose(log);
  std::string text(buf, n);
  CHECK(text.find("skipped: ") != std::string::npos);
  CHECK(text.find("truncated.JPEG") != std::string::npos);
  CHECK(!l.next().has_value());
}

TEST_CASE("loader: every image once per epoch, in the same order and content whatever the workers") {
  TinySet s("order");
  Dataset d = scan_image_folder(s.root.string(), "train");
  // Shuffled, augmented batches of 2 images at 12x12 (seed 42), no log.
  auto shuffled = [] {
    LoaderConfig lc;
    lc.batch = 2;
    lc.transform.size = 12;
    lc.transform.train = true;
    lc.shuffle = true;
    lc.seed = 42;
    lc.log = nullptr;
    return lc;
  };
  auto run = [&](int workers, int prefetch) {
    LoaderConfig lc = shuffled();
    lc.workers = workers;
    lc.prefetch = prefetch;
    Loader l(d, lc);
    REQUIRE(l.batches_per_epoch() == 5);  // 9 files, the last batch short
    std::vector<Batch> bs;
    for (int i = 0; i < 10; ++i) bs.push_back(*l.next());  // two epochs
    return bs;
  };
  std::vector<Batch> ref = run(1, 1);
  for (int e = 0; e < 2; ++e) {
    std::multiset<int64_t> seen;
    for (int i = 0; i < 5; ++i) {
      CHECK(ref[e * 5 + i].epoch == e);
      for (int64_t k : ref[e * 5 + i].indices) seen.insert(k);
    }
    CHECK(seen == std::multiset<int64_t>{0, 1, 3, 4, 5, 6, 7});
  }
  std::vector<int64_t> order0, order1;
  for (int i = 0; i < 5; ++i) order0.insert(order0.end(), ref[i].indices.begin(), ref[i].indices.end());
  for (int i = 5; i < 10; ++i) order1.insert(order1.end(), ref[i].indices.begin(), ref[i].indices.end());
  CHECK(order0 != order1);  // reshuffled (9! orders: a clash is a bug)
  for (auto [workers, prefetch] : {std::pair{2, 1}, std::pair{3, 2}, std::pair{4, 5}}) {
    CAPTURE(workers);
    std::vector<Batch> other = run(workers, prefetch);
    for (size_t i = 0; i < ref.size(); ++i) {
      CHECK(other[i].indices == ref[i].indices);
      CHECK(other[i].images.to_vector<float>() == ref[i].images.to_vector<float>());
    }
  }
  // The augmentation changes from one epoch to the next (the same image, another crop).
  CHECK(ref[0].images.to_vector<float>() != ref[5].images.to_vector<float>());

  // Seeking gives the batch a sequential run gives at that step (resuming training).
  LoaderConfig lc = shuffled();
  Loader l(d, lc);
  l.next();
  l.seek(7);
  CHECK(l.position() == 7);
  Batch b7 = *l.next();
  CHECK(b7.step == 7);
  CHECK(b7.epoch == 1);
  CHECK(b7.indices == ref[7].indices);
  CHECK(b7.images.to_vector<float>() == ref[7].images.to_vector<float>());
  l.seek(0);
  CHECK(l.next()->indices == ref[0].indices);
  // drop_last: floor(9 / 2) batches; too few images for one batch is an error.
  lc.drop_last = true;
  CHECK(Loader(d, lc).batches_per_epoch() == 4);
  lc.batch = 10;
  check_error([&] { Loader(d, lc); }, "fewer than one batch");
}

// ---- model

namespace {

ModelConfig small_config(const std::string& variant = "conv") {
  ModelConfig c;
  c.variant = variant;
  c.image_size = 8;
  c.patch = 4;
  c.dim = 8;
  c.layers = 2;
  c.heads = 2;
  c.kernel = 3;
  c.mlp_ratio = 2;
  c.classes = 3;
  c.drop_path = 0.0;
  c.bias_dim = 3;
  return c;
}

// Gives every parameter a random value (so AFT-conv's kernel, zero at initialisation, matters).
void randomize(ImageAFT& m, uint64_t seed) {
  autograd::NoGradGuard ng;
  Generator g(seed);
  for (Tensor& p : m.parameters()) p.copy_(mul(randn(p.shape(), p.dtype(), &g), 0.5));
}

}  // namespace

TEST_CASE("model: patchify against a loop") {
  Tensor x = randn({2, 8, 12, 3}, kFloat64);
  Tensor p = patchify(x, 4);
  REQUIRE(p.shape() == Shape{2, 2, 3, 48});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t dy = 0; dy < 4; ++dy)
          for (int64_t dx = 0; dx < 4; ++dx)
            for (int64_t c = 0; c < 3; ++c)
              CHECK(p.at({b, i, j, (dy * 4 + dx) * 3 + c}) == x.at({b, i * 4 + dy, j * 4 + dx, c}));
  check_error([&] { patchify(randn({1, 6, 8, 3}), 4); }, "multiples of the patch size 4");
}

TEST_CASE("model: shapes, any size for AFT-conv, the training size only for AFT-full") {
  Generator g(1);
  ImageAFT conv(small_config(), &g);
  CHECK(conv.forward(randn({2, 8, 8, 3})).shape() == Shape{2, 3});
  CHECK(conv.forward(randn({1, 16, 12, 3})).shape() == Shape{1, 3});  // another size (and aspect)
  check_error([&] { conv.forward(randn({1, 10, 10, 3})); }, "patch");
  ImageAFT full(small_config("full"), &g);
  CHECK(full.cls_token.shape() == Shape{1, 1, 8});
  CHECK(full.pos_embed.shape() == Shape{5, 8});  // 2×2 patches + the class token
  CHECK(full.forward(randn({3, 8, 8, 3})).shape() == Shape{3, 3});
  check_error([&] { full.forward(randn({1, 12, 12, 3})); }, "AFT-full runs only at its training size");
  ModelConfig bad = small_config();
  bad.heads = 3;
  check_error([&] { ImageAFT m(bad); }, "heads (3) must divide dim (8)");
  bad = small_config();
  bad.image_size = 10;
  check_error([&] { ImageAFT m(bad); }, "multiple of the patch size");
  // The configuration round-trips through JSON.
  ModelConfig c = small_config("full");
  c.drop_path = 0.25;
  ModelConfig back = ModelConfig::from_json(json::parse(c.to_json()));
  CHECK(back.to_json() == c.to_json());
}

TEST_CASE("model: gradients of the input and of every parameter against finite differences") {
  for (std::string variant : {"conv", "full"}) {
    CAPTURE(variant);
    Generator g(2);
    ImageAFT m(small_config(variant), &g);
    m.to(kFloat64);
    randomize(m, 3);
    Tensor x = leaf({2, 8, 8, 3}, 4);
    Tensor y = from_vector<int64_t>({2, 0}, {2});
    // The input: gradcheck through the whole network.
    check_gradcheck([&](const std::vector<Tensor>& in) { return m.forward(in[0]); }, {x});
    // Parameters: analytic gradients of the loss vs central differences, a few elements each.
    auto loss = [&] { return cross_entropy(m.forward(x.detach()), y, -100, 0.1); };
    m.zero_grad();
    loss().backward();
    for (const nn::NamedParam& p : m.named_parameters()) {
      CAPTURE(p.name);
      REQUIRE(p.tensor.grad().defined());
      std::vector<double> grad = p.tensor.grad().to_vector<double>();
      const int64_t n = p.tensor.numel();
      for (int64_t i : {int64_t{0}, n / 2, n - 1}) {
        double* v = p.tensor.data<double>() + i;
        const double eps = 1e-6, keep = *v;
        double up, down;
        {
          autograd::NoGradGuard ng;
          *v = keep + eps;
          up = loss().item();
          *v = keep - eps;
          down = loss().item();
          *v = keep;
        }
        double numeric = (up - down) / (2 * eps);
        CHECK(std::fabs(numeric - grad[static_cast<size_t>(i)]) <= 1e-6 + 1e-4 * std::fabs(numeric));
      }
    }
  }
}

TEST_CASE("stochastic depth: drop_path forward, backward, statistics") {
  Tensor x = randn({6, 2, 3}, kFloat64);
  CHECK(drop_path(x, 0.5, false).is_same(x));  // eval: identity
  CHECK(drop_path(x, 0.0, true).is_same(x));
  // Forward: each sample is wholly dropped or scaled by 1/(1 − p), as the uniform draw decides.
  const double p = 0.4;
  Generator g1(5), g2(5);
  Tensor y = drop_path(x, p, true, &g1);
  std::vector<double> u = rand({6}, kFloat64, &g2).to_vector<double>();
  for (int64_t b = 0; b < 6; ++b) {
    double scale = u[static_cast<size_t>(b)] >= p ? 1.0 / (1.0 - p) : 0.0;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) CHECK(y.at({b, i, j}) == doctest::Approx(x.at({b, i, j}) * scale));
  }
  // Backward: the same per-sample factor (a fresh generator per call keeps the mask fixed).
  check_gradcheck([&](const std::vector<Tensor>& in) {
    Generator g(9);
    return drop_path(in[0], 0.3, true, &g);
  }, {leaf({5, 4}, 1)});
  // Statistics over many samples: the drop rate and the mean are kept.
  Generator g3(6);
  Tensor ones_ = ones({20000, 1});
  Tensor z = drop_path(ones_, 0.3, true, &g3);
  double dropped = mean(eq(z, 0.0).to(kFloat64)).item();
  CHECK(dropped == doctest::Approx(0.3).epsilon(0.05));
  CHECK(mean(z).item() == doctest::Approx(1.0).epsilon(0.03));
  check_error([&] { drop_path(x, 1.0, true); }, "drop_path: p must be in [0, 1)");

  // In the model: rates rise linearly to the last block; training draws masks, eval does not.
  ModelConfig c = small_config();
  c.layers = 3;
  c.drop_path = 0.5;
  Generator init(1), drops(2);
  ImageAFT m(c, &init, &drops);
  CHECK(m.drop_rate(0) == 0.0);
  CHECK(m.drop_rate(1) == doctest::Approx(0.25));
  CHECK(m.drop_rate(2) == doctest::Approx(0.5));
  Tensor in = randn({16, 8, 8, 3});
  Tensor a = m.forward(in), b = m.forward(in);
  CHECK(a.to_vector<float>() != b.to_vector<float>());
  m.eval();
  CHECK(m.forward(in).to_vector<float>() == m.forward(in).to_vector<float>());
}

TEST_CASE("training lowers the loss; evaluation at another size than training's") {
  TinySet s("train");
  Dataset d = scan_image_folder(s.root.string(), "train");
  ModelConfig c = small_config();
  c.image_size = 16;
  c.drop_path = 0.1;
  Generator init(1), gen(2);
  ImageAFT m(c, &init, &gen);
  nn::AdamW opt(nn::single_group(m), {.lr = 3e-3, .weight_decay = 0.0});
  LoaderConfig lc;
  lc.batch = 9;
  lc.transform.size = 16;
  lc.log = nullptr;
  lc.max_batches = 1;
  Loader l(d, lc);
  Batch b = *l.next();  // the 7 readable images, evaluation transform
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    Tensor loss = cross_entropy(m.forward(b.images), b.labels, -100, 0.1);
    if (i == 0) first = loss.item();
    last = loss.item();
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  MESSAGE("loss ", first, " -> ", last);
  CHECK(last < first * 0.6);
  // The same weights evaluated at 16 and at 24 pixels (AFT-conv does not depend on the size).
  for (int64_t size : {16, 24}) {
    CAPTURE(size);
    LoaderConfig ec = lc;
    ec.transform.size = size;
    ec.batch = 4;
    ec.max_batches = 3;
    Loader el(d, ec);
    ClassMetrics r = evaluate(m, el, kCPU);
    CHECK(r.count == 7);
    CHECK(r.skipped == 2);
    CHECK(std::isfinite(r.loss()));
    if (size == 16) CHECK(r.top1() >= 5.0 / 7);
  }
  CHECK(m.is_training());  // evaluate() puts the mode back
}

// ---- metrics

TEST_CASE("metrics: top-1, top-5, loss, per-class accuracy and the confusion matrix") {
  const int64_t C = 6;
  ClassMetrics m(C);
  // Row i's logits rank the classes as given; labels chosen to hit top-1, top-5, or neither.
  std::vector<std::vector<double>> rows = {
      {5, 4, 3, 2, 1, 0},   // label 0: top-1
      {0, 5, 4, 3, 2, 1},   // label 5: rank 5 (top-5)
      {0, 1, 2, 3, 4, 5},   // label 0: rank 6 (missed)
      {1, 1, 0, 0, 0, 0},   // label 1: tie with class 0, lower class first -> predicted 0, top-5
  };
  std::vector<int64_t> labels = {0, 5, 0, 1};
  std::vector<double> flat;
  for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  m.add(from_vector<double>(flat, {4, C}), from_vector<int64_t>(labels, {4}));
  CHECK(m.count == 4);
  CHECK(m.top1() == doctest::Approx(0.25));
  CHECK(m.top5() == doctest::Approx(0.75));
  double want = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    double mx = *std::max_element(rows[i].begin(), rows[i].end()), se = 0;
    for (double v : rows[i]) se += std::exp(v - mx);
    want += mx + std::log(se) - rows[i][static_cast<size_t>(labels[i])];
  }
  CHECK(m.loss() == doctest::Approx(want / 4));
  CHECK(m.confusion[0 * C + 0] == 1);  // true 0 predicted 0
  CHECK(m.confusion[5 * C + 1] == 1);  // true 5 predicted 1
  CHECK(m.confusion[0 * C + 5] == 1);  // true 0 predicted 5
  CHECK(m.confusion[1 * C + 0] == 1);  // true 1 predicted 0
  std::vector<double> acc = m.per_class_accuracy();
  CHECK(acc[0] == doctest::Approx(0.5));
  CHECK(acc[1] == 0.0);
  CHECK(std::isnan(acc[2]));
  CHECK(top_k({0.1, 0.5, 0.5, 0.2}, 3) == std::vector<int64_t>{1, 2, 3});

  std::vector<std::string> names = {"a", "b,c", "d\"e", "f", "g<h>", "i"};
  std::string csv = confusion_csv(m, names);
  CHECK(csv.rfind("true\\predicted,a,\"b,c\",\"d\"\"e\",f,g<h>,i\n", 0) == 0);
  CHECK(csv.find("\na,1,0,0,0,0,1\n") != std::string::npos);
  std::string svg = confusion_svg(m, names, "test & title");
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("g&lt;h&gt;") != std::string::npos);
  CHECK(svg.find("test &amp; title") != std::string::npos);
  CHECK(svg.find("50.0%") != std::string::npos);
  CHECK(svg.find("</svg>") != std::string::npos);
  check_error([&] { confusion_csv(m, {"a"}); }, "1 names for 6 classes");
  check_error([&] { m.add(zeros({1, 4}), zeros({1}, kInt64)); }, "expected logits [n, 6]");
}
