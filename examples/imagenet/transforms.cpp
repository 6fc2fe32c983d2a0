// examples/imagenet/transforms.cpp: crop boxes, the per-image random stream, and the
// antialiased resampling (see transforms.h for the formulas).
#include "transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/philox.h"

namespace aft::imagenet {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Counter layout: index in the high 40 bits, block number of the image's stream in the low 24.
ImageRng::ImageRng(uint64_t seed, uint64_t epoch, uint64_t index)
    : key_(mix64(seed ^ mix64(epoch ^ 0x1A6E7E7ull))), counter_(index << 24) {}

double ImageRng::uniform() {
  if (used_ >= 4) {
    philox::Words w = philox::philox4x32(counter_++, key_);
    for (int i = 0; i < 4; ++i) words_[i] = w.x[i];
    used_ = 0;
  }
  double u = philox::uniform_f64(words_[used_], words_[used_ + 1]);
  used_ += 2;
  return u;
}

int64_t ImageRng::randint(int64_t lo, int64_t hi) {
  AFT_ASSERT(hi > lo);
  int64_t r = lo + static_cast<int64_t>(uniform() * static_cast<double>(hi - lo));
  return std::min(r, hi - 1);
}

Augment random_resized_crop(int W, int H, const AugmentConfig& cfg, ImageRng& rng) {
  AFT_CHECK(W > 0 && H > 0, "random_resized_crop: empty image {}x{}", W, H);
  AFT_CHECK(cfg.scale_min > 0 && cfg.scale_min <= cfg.scale_max && cfg.ratio_min > 0 && cfg.ratio_min <= cfg.ratio_max,
            "random_resized_crop: bad ranges: scale [{}, {}], ratio [{}, {}]", cfg.scale_min, cfg.scale_max,
            cfg.ratio_min, cfg.ratio_max);
  Augment a;
  const double area = static_cast<double>(W) * H;
  const double lr0 = std::log(cfg.ratio_min), lr1 = std::log(cfg.ratio_max);
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    double target = area * (cfg.scale_min + (cfg.scale_max - cfg.scale_min) * rng.uniform());
    double aspect = std::exp(lr0 + (lr1 - lr0) * rng.uniform());
    int64_t w = std::llround(std::sqrt(target * aspect)), h = std::llround(std::sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      int64_t y = rng.randint(0, H - h + 1), x = rng.randint(0, W - w + 1);
      a.box = {static_cast<double>(x), static_cast<double>(y), static_cast<double>(w), static_cast<double>(h)};
      found = true;
    }
  }
  if (!found) {  // a centre crop with the aspect ratio clamped into range
    double in_ratio = static_cast<double>(W) / H;
    int64_t w = W, h = H;
    if (in_ratio < cfg.ratio_min) h = std::llround(W / cfg.ratio_min);
    else if (in_ratio > cfg.ratio_max) w = std::llround(H * cfg.ratio_max);
    a.box = {static_cast<double>((W - w) / 2), static_cast<double>((H - h) / 2), static_cast<double>(w),
             static_cast<double>(h)};
  }
  a.flip = cfg.flip && rng.uniform() < 0.5;
  return a;
}

CropBox center_crop(int W, int H, int size, double resize_ratio) {
  AFT_CHECK(W > 0 && H > 0 && size > 0, "center_crop: bad sizes: image {}x{}, crop {}", W, H, size);
  AFT_CHECK(resize_ratio >= 1.0, "center_crop: the resize ratio must be >= 1, got {}", resize_ratio);
  double resized_short = std::floor(size * resize_ratio + 1e-9);
  double side = size * std::min(W, H) / resized_short;  // the crop in original pixels
  return {(W - side) / 2, (H - side) / 2, side, side};
}

namespace {

// The taps of a 1-d resampling: output o reads src[first[o] .. first[o] + count[o]) with
// weights[o * stride ..].
struct Taps {
  std::vector<int> first, count;
  std::vector<float> weights;
  int stride = 0;
};

Taps make_taps(double start, double len, int out, int in_size) {
  Taps t;
  const double scale = len / out, radius = std::max(scale, 1.0);
  t.stride = static_cast<int>(std::ceil(radius)) * 2 + 2;
  t.first.resize(out);
  t.count.resize(out);
  t.weights.assign(static_cast<size_t>(out) * t.stride, 0.0f);
  for (int o = 0; o < out; ++o) {
    double c = start + (o + 0.5) * scale;
    int lo = std::max(0, static_cast<int>(std::floor(c - radius))), hi = std::min(in_size, static_cast<int>(std::ceil(c + radius)));
    double wsum = 0;
    std::vector<double> w;
    for (int j = lo; j < hi; ++j) {
      double d = std::fabs(j + 0.5 - c) / radius;
      w.push_back(std::max(0.0, 1.0 - d));
      wsum += w.back();
    }
    if (wsum <= 0) {  // the sample point lies outside the image: take the nearest edge pixel
      lo = std::clamp(static_cast<int>(std::floor(c)), 0, in_size - 1);
      w.assign(1, 1.0);
      wsum = 1;
    }
    // Trim zero weights at both ends (keeps count <= stride).
    size_t a = 0, b = w.size();
    while (a < b && w[a] == 0) ++a;
    while (b > a && w[b - 1] == 0) --b;
    AFT_ASSERT(static_cast<int>(b - a) <= t.stride);
    t.first[o] = lo + static_cast<int>(a);
    t.count[o] = static_cast<int>(b - a);
    for (size_t j = a; j < b; ++j) t.weights[static_cast<size_t>(o) * t.stride + (j - a)] = static_cast<float>(w[j] / wsum);
  }
  return t;
}

}  // namespace

void resample_normalize(const Image& src, const CropBox& box, int out_w, int out_h, bool flip, float* out) {
  AFT_CHECK(src.width > 0 && src.height > 0 && out_w > 0 && out_h > 0 && box.w > 0 && box.h > 0,
            "resample: bad sizes: image {}x{}, box {}x{}, output {}x{}", src.width, src.height, box.w, box.h, out_w, out_h);
  Taps tx = make_taps(box.x, box.w, out_w, src.width), ty = make_taps(box.y, box.h, out_h, src.height);
  // Rows of the source the vertical taps touch, resampled horizontally first: tmp [rows, out_w, 3].
  int row0 = src.height, row1 = 0;
  for (int o = 0; o < out_h; ++o) {
    row0 = std::min(row0, ty.first[o]);
    row1 = std::max(row1, ty.first[o] + ty.count[o]);
  }
  std::vector<float> tmp(static_cast<size_t>(row1 - row0) * out_w * 3);
  for (int y = row0; y < row1; ++y) {
    const uint8_t* s = src.rgb.data() + static_cast<size_t>(y) * src.width * 3;
    float* d = tmp.data() + static_cast<size_t>(y - row0) * out_w * 3;
    for (int o = 0; o < out_w; ++o) {
      const float* w = &tx.weights[static_cast<size_t>(o) * tx.stride];
      const uint8_t* p = s + static_cast<size_t>(tx.first[o]) * 3;
      float r = 0, g = 0, b = 0;
      for (int j = 0; j < tx.count[o]; ++j) {
        r += w[j] * p[3 * j];
        g += w[j] * p[3 * j + 1];
        b += w[j] * p[3 * j + 2];
      }
      d[o * 3] = r;
      d[o * 3 + 1] = g;
      d[o * 3 + 2] = b;
    }
  }
  float scale[3], shift[3];  // x = v·scale + shift = (v/255 − mean)/std
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * kImageNetStd[c]);
    shift[c] = -kImageNetMean[c] / kImageNetStd[c];
  }
  for (int o = 0; o < out_h; ++o) {
    const float* w = &ty.weights[static_cast<size_t>(o) * ty.stride];
    float* d = out + static_cast<size_t>(o) * out_w * 3;
    for (int x = 0; x < out_w; ++x) {
      float acc[3] = {0, 0, 0};
      for (int j = 0; j < ty.count[o]; ++j) {
        const float* p = tmp.data() + (static_cast<size_t>(ty.first[o] + j - row0) * out_w + x) * 3;
        for (int c = 0; c < 3; ++c) acc[c] += w[j] * p[c];
      }
      int dx = flip ? out_w - 1 - x : x;
      for (int c = 0; c < 3; ++c) d[dx * 3 + c] = acc[c] * scale[c] + shift[c];
    }
  }
}

void load_transformed(const uint8_t* data, size_t n, const std::string& what, const TransformConfig& t,
                      uint64_t seed, uint64_t epoch, uint64_t index, float* out) {
  const int S = static_cast<int>(t.size);
  JpegInfo info = read_jpeg_info(data, n, what);
  Augment a;
  if (t.train) {
    ImageRng rng(seed, epoch, index);
    a = random_resized_crop(info.width, info.height, t.augment, rng);
  } else {
    a.box = center_crop(info.width, info.height, S, t.resize_ratio);
  }
  int m = choose_dct_scale(a.box.w, a.box.h, S, S);
  DecodeResult d = decode_jpeg(data, n, what, m);
  // The box in the decoded image's pixels.
  double sx = static_cast<double>(d.image.width) / info.width, sy = static_cast<double>(d.image.height) / info.height;
  CropBox b{a.box.x * sx, a.box.y * sy, a.box.w * sx, a.box.h * sy};
  resample_normalize(d.image, b, S, S, a.flip, out);
}

}  // namespace aft::imagenet
