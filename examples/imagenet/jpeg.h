// examples/imagenet/jpeg.h: JPEG files in and out through libjpeg-turbo (libjpeg62 API).
//
// Decoding is defensive: libjpeg's default error handler calls exit(), so an error handler of
// our own longjmps back and the error becomes an aft::Error naming the file and libjpeg's
// reason. A file cut short is an error too (libjpeg only warns, JWRN_JPEG_EOF, and pads the
// image with grey), as is scan data that ends before the image does (JWRN_HIT_MARKER: libjpeg
// would also pad with grey), as are more than kMaxScans progressive scans (a decompression bomb
// that would otherwise take minutes), images over kMaxPixels, and headers claiming more pixels
// than the file's size can hold (kMaxPixelsPerByte). Other warnings ("extraneous bytes
// before marker", which some ImageNet files have) leave a usable image and are only counted.
//
// Colour: every image comes out as 8-bit RGB, H×W×3 row-major. Grayscale is replicated by
// libjpeg; CMYK and YCCK (Adobe) files are decoded to CMYK and converted here:
//   Adobe files store inverted ink (stored = 255 − ink):  R = C·K / 255  (likewise G, B)
//   other CMYK files:                                     R = (255 − C)·(255 − K) / 255
//
// DCT scaling: libjpeg-turbo decodes at M/8 of the size (M = 1..8) by taking fewer DCT
// coefficients, much faster than decoding at full size and resizing; the output is
// ceil(W·M/8) × ceil(H·M/8). choose_dct_scale picks the smallest M that keeps a region at
// least as large as the size it will be resampled to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aft::imagenet {

inline constexpr int64_t kMaxPixels = int64_t{1} << 28;  // 268M pixels (16384²)
inline constexpr int kMaxScans = 1000;
// A Huffman-coded JPEG spends at least one bit per 8x8 block of every component in its first
// scan, so a complete image holds at most 512 pixels per byte of file (grayscale; fewer with
// colour). A header claiming more than twice that describes data that is not there: refused
// before anything is allocated (a 700-byte progressive file would otherwise make libjpeg
// allocate coefficient buffers for 2^28 pixels). Arithmetic-coded files could in principle
// compress further; they are rare and refused by this rule when they do.
inline constexpr int64_t kMaxPixelsPerByte = 1024;

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height, width, 3]
  uint8_t at(int y, int x, int c) const { return rgb[(static_cast<size_t>(y) * width + x) * 3 + c]; }
};

struct JpegInfo {
  int width = 0, height = 0;  // full size
  int components = 0;         // 1 (gray), 3 (YCbCr/RGB), 4 (CMYK/YCCK)
};

struct DecodeResult {
  Image image;
  JpegInfo info;
  int warnings = 0;  // libjpeg warnings that still left a complete image
};

// The header only (size and components). `what` names the source in errors (the path).
JpegInfo read_jpeg_info(const uint8_t* data, size_t size, const std::string& what);

// Decodes at scale_num/8 (1..8). aft::Error naming `what` on anything wrong with the data.
DecodeResult decode_jpeg(const uint8_t* data, size_t size, const std::string& what, int scale_num = 8);

// Reads and decodes a file (errors name the path).
DecodeResult decode_jpeg_file(const std::string& path, int scale_num = 8);

// The smallest M in 1..8 such that a region region_w × region_h of the full-size image is at
// least out_w × out_h pixels at scale M/8 (8 when even full size is smaller).
int choose_dct_scale(double region_w, double region_h, int out_w, int out_h);

// Size of the image libjpeg produces at scale M/8: ceil(full · M / 8).
int scaled_size(int full, int scale_num);

// Encodes pixels [height, width, components] (1: grayscale, 3: RGB, 4: CMYK written as is,
// Adobe convention: store 255 − ink) at the given quality, baseline or progressive (libjpeg's
// simple progression); for tests, fuzzing seeds and benchmarks.
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int width, int height, int components, int quality = 90,
                                 bool progressive = false);

}  // namespace aft::imagenet
