// examples/imagenet/jpeg.cpp: JPEG decoding and encoding through libjpeg-turbo (see jpeg.h).
//
// libjpeg reports errors through error_exit, which must not return. Ours formats the message
// and longjmps to the setjmp of the function that called libjpeg; that function then destroys
// the libjpeg object and throws. Between setjmp and a possible longjmp no C++ object with a
// destructor is created in these functions (longjmp would skip it): buffers are declared
// before setjmp and only resized afterwards.
#include "jpeg.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "../common/files.h"
#include "core/error.h"

namespace aft::imagenet {

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int warnings;
};

[[noreturn]] void on_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (level −1) are counted, except premature end of data, which is fatal: libjpeg
// would pad the rest of the image with grey. Trace messages (level >= 0) are dropped.
void on_emit_message(j_common_ptr c, int level) {
  if (level >= 0) return;
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  if (c->err->msg_code == JWRN_JPEG_EOF) {
    std::snprintf(e->message, sizeof e->message, "truncated file (premature end of JPEG data)");
    std::longjmp(e->jump, 1);
  }
  // A marker inside the entropy-coded data: the scan ended before covering the image (a header
  // claiming more pixels than the data holds, or a file cut and re-terminated); libjpeg would
  // fill the rest with grey.
  if (c->err->msg_code == JWRN_HIT_MARKER) {
    std::snprintf(e->message, sizeof e->message, "the image data ends before the image does (premature end of data "
                  "segment: the header claims more pixels than the file holds)");
    std::longjmp(e->jump, 1);
  }
  ++e->warnings;
}

// Called between passes and scans: bounds the work a hostile progressive file can ask for.
void on_progress(j_common_ptr c) {
  if (!c->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number > kMaxScans) {
    auto* e = reinterpret_cast<ErrorManager*>(c->err);
    std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(e->jump, 1);
  }
}

// Zeroes a libjpeg (de)compressor, so that destroying it before its creation is harmless, and
// gives it our error handlers. Called before the caller's setjmp.
template <class JpegStruct>
void init_errors(JpegStruct& c, ErrorManager& e) {
  std::memset(&c, 0, sizeof c);
  std::memset(&e, 0, sizeof e);
  jpeg_std_error(&e.pub);
  e.pub.error_exit = on_error_exit;
  e.pub.emit_message = on_emit_message;
  c.err = &e.pub;
}

[[noreturn]] void fail(const std::string& what, const char* message) {
  AFT_ERROR("{}: cannot decode JPEG: {}", what, message);
}

// Checks the header's size and components and chooses the output colour space; on a problem
// writes it into msg (the caller's buffer: workers decode concurrently) and returns false.
bool check_header(const jpeg_decompress_struct& c, size_t file_size, J_COLOR_SPACE* out, char* msg, size_t n) {
  if (c.image_width == 0 || c.image_height == 0) {
    std::snprintf(msg, n, "empty image");
    return false;
  }
  const int64_t pixels = static_cast<int64_t>(c.image_width) * c.image_height;
  if (pixels > kMaxPixelsPerByte * static_cast<int64_t>(file_size)) {
    std::snprintf(msg, n, "%ux%u pixels cannot be held by a file of %zu bytes (at most %lld pixels per byte): the "
                  "header lies", c.image_width, c.image_height, file_size, static_cast<long long>(kMaxPixelsPerByte));
    return false;
  }
  if (static_cast<int64_t>(c.image_width) * c.image_height > kMaxPixels) {
    std::snprintf(msg, n, "%ux%u pixels is more than the limit of %lld", c.image_width, c.image_height,
                  static_cast<long long>(kMaxPixels));
    return false;
  }
  switch (c.jpeg_color_space) {
    case JCS_GRAYSCALE: case JCS_RGB: case JCS_YCbCr: *out = JCS_RGB; return true;
    case JCS_CMYK: case JCS_YCCK: *out = JCS_CMYK; return true;
    default:
      std::snprintf(msg, n, "unsupported colour space %d with %d components", static_cast<int>(c.jpeg_color_space),
                    c.num_components);
      return false;
  }
}

// Creates the decompressor on the file's bytes and reads the header; an error longjmps to the
// caller's setjmp. With `progress` (decoding), also bounds the memory and the progressive scans.
void read_header(jpeg_decompress_struct& c, const uint8_t* data, size_t size, jpeg_progress_mgr* progress) {
  jpeg_create_decompress(&c);
  if (progress) {
    c.mem->max_memory_to_use = 1L << 30;
    progress->progress_monitor = on_progress;
    c.progress = progress;
  }
  jpeg_mem_src(&c, data, static_cast<unsigned long>(size));
  jpeg_read_header(&c, TRUE);
}

}  // namespace

int scaled_size(int full, int scale_num) { return static_cast<int>((static_cast<int64_t>(full) * scale_num + 7) / 8); }

int choose_dct_scale(double region_w, double region_h, int out_w, int out_h) {
  for (int m = 1; m < 8; ++m)
    if (region_w * m / 8.0 >= out_w && region_h * m / 8.0 >= out_h) return m;
  return 8;
}

JpegInfo read_jpeg_info(const uint8_t* data, size_t size, const std::string& what) {
  AFT_CHECK(size > 0, "{}: cannot decode JPEG: empty file", what);
  jpeg_decompress_struct c;
  ErrorManager err;
  init_errors(c, err);
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&c);
    fail(what, err.message);
  }
  read_header(c, data, size, nullptr);
  JpegInfo info{static_cast<int>(c.image_width), static_cast<int>(c.image_height), c.num_components};
  J_COLOR_SPACE out;
  bool ok = check_header(c, size, &out, err.message, sizeof err.message);
  jpeg_destroy_decompress(&c);
  if (!ok) fail(what, err.message);
  return info;
}

DecodeResult decode_jpeg(const uint8_t* data, size_t size, const std::string& what, int scale_num) {
  AFT_CHECK(scale_num >= 1 && scale_num <= 8, "decode_jpeg: scale must be 1..8 eighths, got {}", scale_num);
  AFT_CHECK(size > 0, "{}: cannot decode JPEG: empty file", what);
  DecodeResult r;
  std::vector<uint8_t> row;  // one CMYK scanline
  jpeg_decompress_struct c;
  jpeg_progress_mgr progress{};
  ErrorManager err;
  init_errors(c, err);
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&c);
    fail(what, err.message);
  }
  read_header(c, data, size, &progress);
  J_COLOR_SPACE out_space = JCS_UNKNOWN;
  if (!check_header(c, size, &out_space, err.message, sizeof err.message)) std::longjmp(err.jump, 1);
  r.info = {static_cast<int>(c.image_width), static_cast<int>(c.image_height), c.num_components};
  c.out_color_space = out_space;
  c.scale_num = static_cast<unsigned>(scale_num);
  c.scale_denom = 8;
  jpeg_start_decompress(&c);
  const int W = static_cast<int>(c.output_width), H = static_cast<int>(c.output_height);
  r.image.width = W;
  r.image.height = H;
  r.image.rgb.resize(static_cast<size_t>(W) * H * 3);
  const bool cmyk = out_space == JCS_CMYK, adobe_inverted = c.saw_Adobe_marker;
  if (cmyk) row.resize(static_cast<size_t>(W) * 4);
  while (c.output_scanline < c.output_height) {
    uint8_t* dst = r.image.rgb.data() + static_cast<size_t>(c.output_scanline) * W * 3;
    JSAMPROW rows[1] = {cmyk ? row.data() : dst};
    jpeg_read_scanlines(&c, rows, 1);
    if (!cmyk) continue;
    for (int x = 0; x < W; ++x) {
      const uint8_t* p = &row[static_cast<size_t>(x) * 4];
      int k = adobe_inverted ? p[3] : 255 - p[3];
      for (int ch = 0; ch < 3; ++ch) {
        int ink_free = adobe_inverted ? p[ch] : 255 - p[ch];  // 255 − ink
        dst[x * 3 + ch] = static_cast<uint8_t>((ink_free * k + 127) / 255);
      }
    }
  }
  jpeg_finish_decompress(&c);
  r.warnings = err.warnings;
  jpeg_destroy_decompress(&c);
  return r;
}

DecodeResult decode_jpeg_file(const std::string& path, int scale_num) {
  std::vector<uint8_t> bytes = files::read_file_bytes(path);
  return decode_jpeg(bytes.data(), bytes.size(), path, scale_num);
}

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int width, int height, int components, int quality,
                                 bool progressive) {
  AFT_CHECK(width > 0 && height > 0, "encode_jpeg: size must be positive, got {}x{}", width, height);
  AFT_CHECK(components == 1 || components == 3 || components == 4,
            "encode_jpeg: components must be 1, 3 or 4, got {}", components);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  jpeg_compress_struct c;
  ErrorManager err;
  init_errors(c, err);
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&c);
    std::free(buf);
    AFT_ERROR("encode_jpeg: {}", err.message);
  }
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &buf, &len);
  c.image_width = static_cast<JDIMENSION>(width);
  c.image_height = static_cast<JDIMENSION>(height);
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&c);
  if (components == 4) jpeg_set_colorspace(&c, JCS_CMYK);
  jpeg_set_quality(&c, quality, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  const size_t stride = static_cast<size_t>(width) * components;
  while (c.next_scanline < c.image_height) {
    JSAMPROW rows[1] = {const_cast<uint8_t*>(pixels + c.next_scanline * stride)};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + len);
  std::free(buf);
  return out;
}

}  // namespace aft::imagenet
