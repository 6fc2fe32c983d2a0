// examples/cifar10/data.h: CIFAR-10 (binary version) as sequences of sub-pixels, and the
// augmented training batches of the autoregressive image model.
//
// The files (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, which unpacks to
// cifar-10-batches-bin/): data_batch_1.bin … data_batch_5.bin (10,000 training images each) and
// test_batch.bin (10,000). Each is a run of 3,073-byte records:
//   label (0..9), then 1,024 R, 1,024 G, 1,024 B bytes, each plane 32 rows of 32 from the top.
//
// Sequence order (Image GPT's, as in the AFT paper): raster order over pixels, and R, G, B of
// each pixel in turn, so sub-pixel (y, x, c) is element t = 3·(32·y + x) + c of the sequence
// (T = 3,072). Images are stored in that order, which is also the interleaved RGB row order of
// an image file.
//
// The model sees [SOS, s_0, …, s_3070] and predicts [s_0, …, s_3071]: position t's logits are
// the distribution of sub-pixel t given the ones before it, so every sub-pixel (the first too)
// is scored. SOS is an extra token, 256.
//
// Augmentation (the paper's): a random horizontal flip, then one random integer δ ∈ [−10, 10]
// added to every sub-pixel of the image, clipped to [0, 255]; both drawn from the run's
// generator, so a seed gives the same batches.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/random.h"

namespace aft::cifar10 {

inline constexpr int64_t kSide = 32;                   // image height and width
inline constexpr int64_t kPixels = kSide * kSide;      // 1,024
inline constexpr int64_t kDims = 3 * kPixels;          // 3,072 sub-pixels: the sequence length
inline constexpr int64_t kRecord = 1 + kDims;          // 3,073 bytes per record
inline constexpr int64_t kSOS = 256;                   // the start token
inline constexpr int64_t kVocab = 257;                 // 256 intensities + SOS
inline constexpr int64_t kMaxShift = 10;               // augmentation: δ ∈ [−10, 10]

struct Images {
  std::vector<uint8_t> pixels;  // [N, 3072], sequence order
  std::vector<uint8_t> labels;  // [N]
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  const uint8_t* image(int64_t i) const { return pixels.data() + i * kDims; }
  void append(const Images& other);
};

struct Dataset {
  Images train, test;
  int64_t train_batches = 0;  // how many of data_batch_1..5 were found
  std::string description;    // where it came from, which files, how many images
};

// Parses the bytes of one batch file. aft::Error naming `name` when the size is not a positive
// whole number of 3,073-byte records, or a label is not in 0..9.
Images parse_batch(std::span<const uint8_t> bytes, const std::string& name);

// From a directory holding the .bin files (or holding cifar-10-batches-bin/ with them), or from
// the distributed cifar-10-binary.tar.gz (or an unpacked .tar). Uses whichever of
// data_batch_1..5.bin are there (with_train: at least one must be); test_batch.bin must be
// there. Errors name the file or archive and what is missing.
Dataset load_cifar10(const std::string& path, bool with_train = true);

// One image (sequence order) flipped horizontally when `flip`, then shifted by `shift` and
// clipped: out[y, x, c] = clamp(in[y, flip ? 31 − x : x, c] + shift, 0, 255).
void augment(const uint8_t* in, bool flip, int shift, uint8_t* out);

struct Batch {
  std::vector<int64_t> inputs, targets;  // [B, 3072] each: [SOS, s_0..s_3070] and [s_0..s_3071]
  std::vector<uint8_t> images;           // [B, 3072]: the (augmented) images
};
// The images at `indices`. With a generator, each is augmented: B flips (randint(0, 2)) then B
// shifts (randint(−10, 11)) drawn from gen; without one, they are used as they are.
Batch make_batch(const Images& images, std::span<const int64_t> indices, Generator* gen);
// The model's input for images [B, 3072]: SOS followed by each image's first 3,071 sub-pixels.
std::vector<int64_t> shift_right(std::span<const uint8_t> images, int64_t B);

}  // namespace aft::cifar10
