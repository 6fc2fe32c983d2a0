// examples/imagenet/transforms.h: the image transforms of ImageNet training and evaluation,
// from JPEG bytes to a normalised float image [S, S, 3] (channels last, as the model takes it).
//
// Training (torchvision's RandomResizedCrop + RandomHorizontalFlip): a box of area
// U(0.08, 1) × the image's and aspect ratio exp(U(log 3/4, log 4/3)), placed uniformly (ten
// tries, then a centre crop of clamped aspect), resized to S×S, mirrored with probability ½.
// Evaluation: the shorter side resized to R = floor(S·256/224), then the centre S×S; as a box
// in the original image that is the centred square of side S·short/R.
// Both then normalise: x = (pixel/255 − mean[c]) / std[c] with ImageNet's mean and std.
//
// Geometry is continuous: pixel i covers [i, i+1), so a box (x, y, w, h) is a region of the
// image in pixel units. The box is chosen on the full-size image; the JPEG is decoded at the
// smallest DCT scale M/8 that keeps the box at least S×S (jpeg.h) and the box is scaled with it.
//
// Resampling is separable with a triangle (tent) filter whose radius is max(1, box/S) source
// pixels: bilinear interpolation when enlarging, an antialiasing average when shrinking (as
// PIL's BILINEAR resize). Output pixel o of a box starting at b with scale f = len/S samples
// around c = b + (o + ½)·f with weights max(0, 1 − |j + ½ − c| / radius), normalised to sum 1,
// over the source pixels j inside the image.
//
// Randomness: every draw for image `index` in epoch `epoch` comes from its own Philox stream
// (key from (seed, epoch), counter from (index, draw number)), so an image's augmentation does
// not depend on which thread decodes it, on batch composition, or on the order of decoding.
#pragma once

#include <cstdint>
#include <string>

#include "jpeg.h"

namespace aft::imagenet {

inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

// splitmix64: a 64-bit mixing function (Steele et al.), to derive Philox keys.
uint64_t mix64(uint64_t x);

// The random numbers of one image in one epoch.
class ImageRng {
 public:
  ImageRng(uint64_t seed, uint64_t epoch, uint64_t index);
  double uniform();                      // [0, 1), 53 bits
  int64_t randint(int64_t lo, int64_t hi);  // [lo, hi)

 private:
  uint64_t key_, counter_;
  uint32_t words_[4];
  int used_ = 4;
};

struct CropBox {
  double x = 0, y = 0, w = 0, h = 0;
};

struct AugmentConfig {
  double scale_min = 0.08, scale_max = 1.0;          // of the image's area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height
  bool flip = true;
};

struct Augment {
  CropBox box;
  bool flip = false;
};

// torchvision's RandomResizedCrop.get_params on a W×H image, then the flip draw.
Augment random_resized_crop(int W, int H, const AugmentConfig& cfg, ImageRng& rng);
// The evaluation box: shorter side to floor(size·resize_ratio), then the centre size×size.
CropBox center_crop(int W, int H, int size, double resize_ratio = 256.0 / 224.0);

// Resamples `box` of src to out_w×out_h (mirrored left-right when flip) and normalises:
// out [out_h, out_w, 3] float.
void resample_normalize(const Image& src, const CropBox& box, int out_w, int out_h, bool flip, float* out);

struct TransformConfig {
  int64_t size = 224;  // output S×S
  bool train = false;
  AugmentConfig augment;
  double resize_ratio = 256.0 / 224.0;
};

// JPEG bytes -> out [size, size, 3]: box chosen on the full-size header, decoded at the DCT
// scale the box allows, resampled and normalised. aft::Error (naming `what`) on a bad file.
void load_transformed(const uint8_t* data, size_t n, const std::string& what, const TransformConfig& t,
                      uint64_t seed, uint64_t epoch, uint64_t index, float* out);

}  // namespace aft::imagenet
