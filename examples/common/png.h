// examples/common/png.h: 8-bit images to and from PNG files (libpng's simplified API), and a
// grid of equal-sized tiles for showing many small images at once (samples, completions).
//
// An Image holds its pixels row by row from the top, channels interleaved (gray, RGB or RGBA):
//   pixels[(y·width + x)·channels + c]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aft::png {

struct Image {
  int64_t width = 0, height = 0, channels = 3;  // channels: 1 (gray), 3 (RGB) or 4 (RGBA)
  std::vector<uint8_t> pixels;                  // height·width·channels bytes
};

// Writes an 8-bit PNG atomically (a temporary file, then a rename); aft::Error naming the path
// on a bad image or a write failure.
void write_png(const std::string& path, const Image& image);
// Reads any PNG, converted to 8 bits and `channels` channels (1, 3 or 4: libpng does the
// conversion: palettes expanded, 16-bit reduced, alpha composed over black when dropped).
Image read_png(const std::string& path, int64_t channels = 3);

// A rows × cols grid of tiles (tile_h × tile_w, `channels` channels, layout as Image::pixels),
// each pixel enlarged to scale × scale, with `pad` pixels of `background` around and between
// tiles. Tiles fill the grid row by row; rows = ceil(tiles / cols). A null tile stays background.
Image tile_grid(const std::vector<const uint8_t*>& tiles, int64_t tile_h, int64_t tile_w, int64_t channels,
                int64_t cols, int64_t scale = 1, int64_t pad = 2, uint8_t background = 255);

}  // namespace aft::png
