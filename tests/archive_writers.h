// tests/archive_writers.h: tar and zip archives written by hand, for the tests of the readers
// (test_cifar10, test_enwik8, test_hostile_input) and the fuzzers' seed corpora (tests/fuzz):
// a valid archive to start from, and headers that can be made to lie (sizes, CRCs).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace aft::test {

// A tar archive written by hand: ustar headers (octal fields, or base-256 for sizes of 8 GiB and
// more; checksum), data padded to 512.
struct TarWriter {
  std::vector<uint8_t> out;
  void header(const std::string& name, uint64_t size, char type, const std::string& prefix = "") {
    uint8_t h[512] = {};
    std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
    std::snprintf(reinterpret_cast<char*>(h + 100), 8, "%07o", 0644);
    std::snprintf(reinterpret_cast<char*>(h + 108), 8, "%07o", 1000);
    std::snprintf(reinterpret_cast<char*>(h + 116), 8, "%07o", 1000);
    if (size < (uint64_t{1} << 33)) {
      std::snprintf(reinterpret_cast<char*>(h + 124), 12, "%011llo", static_cast<unsigned long long>(size));
    } else {  // GNU base-256: top bit set, the size big-endian in the last 8 bytes of the field
      h[124] = 0x80;
      for (int i = 0; i < 8; ++i) h[128 + i] = static_cast<uint8_t>(size >> (56 - 8 * i));
    }
    std::snprintf(reinterpret_cast<char*>(h + 136), 12, "%011o", 0);
    h[156] = static_cast<uint8_t>(type);
    std::memcpy(h + 257, "ustar\0" "00", 8);
    std::memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (uint8_t b : h) sum += b;
    std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum);  // 6 digits, NUL, space
    h[155] = ' ';
    out.insert(out.end(), h, h + 512);
  }
  void data(const std::vector<uint8_t>& d) {
    out.insert(out.end(), d.begin(), d.end());
    out.resize((out.size() + 511) / 512 * 512, 0);
  }
  void file(const std::string& name, const std::vector<uint8_t>& d, const std::string& prefix = "") {
    header(name, d.size(), '0', prefix);
    data(d);
  }
  void dir(const std::string& name) { header(name, 0, '5'); }
  void long_name(const std::string& name, const std::vector<uint8_t>& d) {  // GNU 'L' then the file
    std::vector<uint8_t> n(name.begin(), name.end());
    n.push_back(0);
    header("././@LongLink", n.size(), 'L');
    data(n);
    file(name.substr(0, 99), d);
  }
  std::vector<uint8_t> finish() {
    out.resize(out.size() + 1024, 0);
    return out;
  }
};

inline void put16(std::vector<uint8_t>& o, uint32_t v) { o.push_back(v & 255); o.push_back((v >> 8) & 255); }
inline void put32(std::vector<uint8_t>& o, uint32_t v) { put16(o, v & 0xFFFF); put16(o, v >> 16); }

// A one-member zip (deflate), as `zip` writes it: local header, data, central directory, end.
// declared_size >= 0: the uncompressed size the headers claim, instead of the true one.
inline std::vector<uint8_t> make_zip(const std::string& name, const std::vector<uint8_t>& data, bool corrupt_crc = false,
                                     int64_t declared_size = -1) {
  std::vector<uint8_t> comp(compressBound(data.size()) + 16);
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("zlib");
  z.next_in = const_cast<uint8_t*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = comp.data();
  z.avail_out = static_cast<uInt>(comp.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("zlib");
  comp.resize(z.total_out);
  deflateEnd(&z);
  uint32_t crc = static_cast<uint32_t>(crc32(0L, data.data(), static_cast<uInt>(data.size()))) ^ (corrupt_crc ? 1u : 0u);
  const uint32_t usize = static_cast<uint32_t>(declared_size >= 0 ? declared_size : static_cast<int64_t>(data.size()));
  std::vector<uint8_t> o;
  put32(o, 0x04034b50); put16(o, 20); put16(o, 0); put16(o, 8); put16(o, 0); put16(o, 0);
  put32(o, crc); put32(o, static_cast<uint32_t>(comp.size())); put32(o, usize);
  put16(o, static_cast<uint32_t>(name.size())); put16(o, 0);
  o.insert(o.end(), name.begin(), name.end());
  o.insert(o.end(), comp.begin(), comp.end());
  uint32_t cd = static_cast<uint32_t>(o.size());
  put32(o, 0x02014b50); put16(o, 20); put16(o, 20); put16(o, 0); put16(o, 8); put16(o, 0); put16(o, 0);
  put32(o, crc); put32(o, static_cast<uint32_t>(comp.size())); put32(o, usize);
  put16(o, static_cast<uint32_t>(name.size())); put16(o, 0); put16(o, 0); put16(o, 0); put16(o, 0);
  put32(o, 0); put32(o, 0);
  o.insert(o.end(), name.begin(), name.end());
  uint32_t cd_size = static_cast<uint32_t>(o.size()) - cd;
  put32(o, 0x06054b50); put16(o, 0); put16(o, 0); put16(o, 1); put16(o, 1);
  put32(o, cd_size); put32(o, cd); put16(o, 0);
  return o;
}

}  // namespace aft::test
