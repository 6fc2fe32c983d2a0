// examples/common/tar.cpp: the streaming tar reader (see tar.h).
//
// A tar archive is a sequence of 512-byte blocks: a header block per member, then its data
// rounded up to whole blocks; two zero blocks end it. Header fields used (byte offsets):
//   name [0, 100)  size [124, 136)  chksum [148, 156)  typeflag 156  magic [257, 263)
//   prefix [345, 500) (ustar)
// The checksum is the sum of the 512 header bytes with the chksum field read as 8 spaces,
// written in octal; old writers summed signed chars, so both sums are accepted.
#include "tar.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "core/error.h"
#include "core/format.h"

namespace aft::files {

namespace {

constexpr size_t kBlock = 512;

// An octal field (NUL/space terminated, leading spaces allowed), or GNU base-256 when the first
// byte has its top bit set. Returns false when malformed.
bool parse_number(const uint8_t* f, size_t n, uint64_t* out) {
  uint64_t v = 0;
  if (f[0] & 0x80) {  // base-256: the remaining bits, big-endian
    v = f[0] & 0x7F;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 55) return false;  // would overflow 64 bits
      v = (v << 8) | f[i];
    }
    *out = v;
    return true;
  }
  size_t i = 0;
  while (i < n && f[i] == ' ') ++i;
  bool any = false;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + (f[i] - '0');
    any = true;
  }
  for (; i < n; ++i)
    if (f[i] != 0 && f[i] != ' ') return false;
  *out = v;
  return any;
}

std::string field_string(const uint8_t* f, size_t n) {
  size_t len = 0;
  while (len < n && f[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(f), len);
}

// The "path" record of a pax extended header: records "<len> <key>=<value>\n".
std::string pax_path(const std::vector<uint8_t>& d) {
  std::string path;
  size_t i = 0;
  while (i < d.size()) {
    size_t sp = i;
    uint64_t len = 0;
    while (sp < d.size() && d[sp] >= '0' && d[sp] <= '9') len = len * 10 + (d[sp++] - '0');
    if (sp >= d.size() || d[sp] != ' ' || len == 0 || i + len > d.size()) break;  // malformed: ignore
    std::string rec(d.begin() + static_cast<long>(sp + 1), d.begin() + static_cast<long>(i + len));
    if (!rec.empty() && rec.back() == '\n') rec.pop_back();
    if (rec.rfind("path=", 0) == 0) path = rec.substr(5);
    i += len;
  }
  return path;
}

// zlib's gz reader: gzip streams are inflated, anything else passes through as it is.
class Stream {
 public:
  explicit Stream(const std::string& path) : path_(path) {
    g_ = gzopen(path.c_str(), "rb");
    AFT_CHECK(g_ != nullptr, "{}: cannot open: {}", path, std::strerror(errno));
    gzbuffer(g_, 1 << 17);
  }
  ~Stream() { gzclose(g_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Reads up to n bytes (n may exceed what fits in an int); returns how many were read, fewer
  // only at the end of the stream.
  size_t read(uint8_t* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, size_t{1} << 30));
      int got = gzread(g_, out ? out + done : scratch_, out ? chunk : std::min<unsigned>(chunk, sizeof scratch_));
      if (got < 0) {
        int errnum = 0;
        const char* msg = gzerror(g_, &errnum);
        AFT_ERROR("{}: corrupt or truncated gzip data ({})", path_, msg ? msg : "");
      }
      if (got == 0) {
        int errnum = 0;
        const char* msg = gzerror(g_, &errnum);
        AFT_CHECK(errnum == Z_OK, "{}: corrupt or truncated gzip data ({})", path_, msg ? msg : "");
        break;
      }
      done += static_cast<size_t>(got);
    }
    return done;
  }
  // Reads n bytes into nothing.
  size_t skip(size_t n) { return read(nullptr, n); }

 private:
  std::string path_;
  gzFile g_ = nullptr;
  uint8_t scratch_[1 << 16];
};

}  // namespace

std::string base_name(const std::string& path) {
  size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

std::vector<TarMember> read_tar(const std::string& path,
                                const std::function<bool(const std::string&, uint64_t)>& want) {
  auto stream = std::make_unique<Stream>(path);  // large scratch buffer: not on the stack
  std::vector<TarMember> members;
  std::string long_name;  // from a preceding GNU 'L' or pax 'x' header
  uint8_t h[kBlock];
  uint64_t offset = 0;  // of the current header in the uncompressed archive
  for (;;) {
    size_t got = stream->read(h, kBlock);
    if (got == 0) break;  // end of file without the zero blocks: accepted
    AFT_CHECK(got == kBlock, "{}: truncated tar archive (a header at byte {} is cut short)", path, offset);
    bool zero = true;
    for (uint8_t b : h) zero = zero && b == 0;
    if (zero) break;
    // The checksum, over the header with its own field taken as spaces.
    uint64_t stored = 0;
    AFT_CHECK(parse_number(h + 148, 8, &stored),
              "{}: not a tar archive (no valid header checksum at byte {}); expected a .tar or .tar.gz", path, offset);
    uint64_t usum = 0;
    int64_t ssum = 0;
    for (size_t i = 0; i < kBlock; ++i) {
      uint8_t b = (i >= 148 && i < 156) ? ' ' : h[i];
      usum += b;
      ssum += static_cast<int8_t>(b);
    }
    AFT_CHECK(stored == usum || static_cast<int64_t>(stored) == ssum,
              "{}: not a tar archive, or a corrupt one (header checksum mismatch at byte {}: stored {}, computed {})",
              path, offset, stored, usum);
    std::string name = field_string(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      std::string prefix = field_string(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (!long_name.empty()) name = std::exchange(long_name, {});
    uint64_t size = 0;
    AFT_CHECK(parse_number(h + 124, 12, &size), "{}: member '{}' has a malformed size field", path, name);
    const char type = static_cast<char>(h[156]);
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    offset += kBlock;
    // The member's bytes, read in pieces of at most 16 MiB: memory grows with the data that is
    // really there, never with the size a (possibly lying) header claims.
    auto read_data = [&](std::vector<uint8_t>& out) {
      constexpr uint64_t kPiece = uint64_t{1} << 24;
      out.clear();
      uint64_t n = 0;
      while (n < size) {
        const uint64_t want_now = std::min(kPiece, size - n);
        out.resize(static_cast<size_t>(n + want_now));
        const uint64_t got_now = stream->read(out.data() + n, static_cast<size_t>(want_now));
        n += got_now;
        if (got_now < want_now) break;
      }
      out.resize(static_cast<size_t>(n));
      AFT_CHECK(n == size, "{}: truncated tar archive: member '{}' should hold {} bytes, only {} are there", path,
                name, size, n);
      AFT_CHECK(stream->skip(padded - size) == padded - size, "{}: truncated tar archive after member '{}'", path,
                name);
    };
    if (type == 'L' || type == 'x') {  // the next member's name
      AFT_CHECK(size < (1u << 20), "{}: oversized {} header ({} bytes) at byte {}", path,
                type == 'L' ? "GNU long-name" : "pax", size, offset - kBlock);
      std::vector<uint8_t> d;
      read_data(d);
      long_name = type == 'L' ? field_string(d.data(), d.size()) : pax_path(d);
    } else if (type == '0' || type == '\0' || type == '7') {  // regular file
      TarMember m;
      m.name = name;
      m.size = size;
      if (want(name, size)) {
        read_data(m.data);
      } else {
        uint64_t n = stream->skip(padded);
        AFT_CHECK(n == padded, "{}: truncated tar archive: member '{}' should hold {} bytes, only {} are there", path,
                  name, size, std::min<uint64_t>(n, size));
      }
      members.push_back(std::move(m));
    } else {  // directory, link, global pax header...: skip its data
      AFT_CHECK(stream->skip(padded) == padded, "{}: truncated tar archive in member '{}'", path, name);
    }
    offset += padded;
  }
  return members;
}

}  // namespace aft::files
