// examples/common/png.cpp: PNG writing and reading through libpng, and tile grids (see png.h).
#include "png.h"

#include <png.h>

#include <cstring>

#include "core/error.h"
#include "nn/run/metrics.h"

namespace aft::png {

namespace {

png_uint_32 format_of(int64_t channels) {
  switch (channels) {
    case 1: return PNG_FORMAT_GRAY;
    case 3: return PNG_FORMAT_RGB;
    case 4: return PNG_FORMAT_RGBA;
    default: AFT_ERROR("png: channels must be 1, 3 or 4, got {}", channels);
  }
}

}  // namespace

void write_png(const std::string& path, const Image& img) {
  AFT_CHECK(img.width > 0 && img.height > 0 && img.width <= (1 << 24) && img.height <= (1 << 24),
            "write_png {}: bad size {} x {}", path, img.width, img.height);
  const png_uint_32 format = format_of(img.channels);
  AFT_CHECK(static_cast<int64_t>(img.pixels.size()) == img.width * img.height * img.channels,
            "write_png {}: {} bytes of pixels for a {} x {} x {} image", path, img.pixels.size(), img.width,
            img.height, img.channels);
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(img.width);
  im.height = static_cast<png_uint_32>(img.height);
  im.format = format;
  // Twice: the first call (no buffer) gives the size of the encoded file.
  png_alloc_size_t size = 0;
  AFT_CHECK(png_image_write_to_memory(&im, nullptr, &size, 0, img.pixels.data(), 0, nullptr),
            "write_png {}: libpng: {}", path, im.message);
  std::string bytes(size, '\0');
  AFT_CHECK(png_image_write_to_memory(&im, bytes.data(), &size, 0, img.pixels.data(), 0, nullptr),
            "write_png {}: libpng: {}", path, im.message);
  bytes.resize(size);
  nn::write_file_atomic(path, bytes);
}

Image read_png(const std::string& path, int64_t channels) {
  const png_uint_32 format = format_of(channels);
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  AFT_CHECK(png_image_begin_read_from_file(&im, path.c_str()), "read_png {}: {}", path, im.message);
  im.format = format;
  Image out;
  out.width = im.width;
  out.height = im.height;
  out.channels = channels;
  out.pixels.resize(PNG_IMAGE_SIZE(im));
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(&im, &black, out.pixels.data(), 0, nullptr)) {
    std::string msg = im.message;
    png_image_free(&im);
    AFT_ERROR("read_png {}: {}", path, msg);
  }
  return out;
}

Image tile_grid(const std::vector<const uint8_t*>& tiles, int64_t th, int64_t tw, int64_t C, int64_t cols,
                int64_t scale, int64_t pad, uint8_t background) {
  AFT_CHECK(!tiles.empty() && th > 0 && tw > 0 && cols > 0 && scale > 0 && pad >= 0,
            "tile_grid: need tiles, positive sizes, cols and scale (got {} tiles of {} x {}, cols {}, scale {})",
            tiles.size(), th, tw, cols, scale);
  const int64_t n = static_cast<int64_t>(tiles.size()), rows = (n + cols - 1) / cols;
  const int64_t sh = th * scale, sw = tw * scale;
  Image g;
  g.channels = C;
  g.width = cols * sw + (cols + 1) * pad;
  g.height = rows * sh + (rows + 1) * pad;
  g.pixels.assign(static_cast<size_t>(g.width * g.height * C), background);
  for (int64_t i = 0; i < n; ++i) {
    if (!tiles[i]) continue;
    const int64_t y0 = pad + (i / cols) * (sh + pad), x0 = pad + (i % cols) * (sw + pad);
    for (int64_t y = 0; y < sh; ++y)
      for (int64_t x = 0; x < sw; ++x)
        std::memcpy(&g.pixels[((y0 + y) * g.width + x0 + x) * C], tiles[i] + ((y / scale) * tw + x / scale) * C,
                    static_cast<size_t>(C));
  }
  return g;
}

}  // namespace aft::png
