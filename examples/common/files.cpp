// examples/common/files.cpp: raw, gzip and zip readers (see files.h).
#include "files.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace aft::files {

namespace {

uint32_t le16(const uint8_t* p) { return p[0] | (p[1] << 8); }
uint32_t le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Inflates `n` raw-deflate bytes, which must give exactly `out_size` bytes. The output grows
// as zlib produces it, never by the size the archive claims: a lying header costs only the
// memory of the data that is really there (deflate expands at most 1032:1).
std::vector<uint8_t> inflate_raw(const std::string& path, const uint8_t* data, size_t n, size_t out_size) {
  std::vector<uint8_t> out;
  z_stream z{};
  AFT_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, "{}: zlib init failed", path);
  constexpr size_t kChunk = size_t{1} << 20;
  size_t in_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    // zlib counts in uInt: feed at most 1 GiB at a time; take at most 1 MiB of output at a time,
    // and one byte past the declared size, to see a member that holds more than it says.
    size_t in_chunk = std::min<size_t>(n - in_done, size_t{1} << 30);
    size_t room = std::min(kChunk, out_size + 1 - out.size());
    size_t before = out.size();
    out.resize(before + room);
    z.next_in = const_cast<uint8_t*>(data + in_done);
    z.avail_in = static_cast<uInt>(in_chunk);
    z.next_out = out.data() + before;
    z.avail_out = static_cast<uInt>(room);
    rc = inflate(&z, Z_NO_FLUSH);
    in_done += in_chunk - z.avail_in;
    out.resize(before + room - z.avail_out);
    if (out.size() > out_size) break;                          // more output than declared
    if (rc == Z_OK && z.avail_in == 0 && in_done == n && z.avail_out != 0) break;  // input exhausted
  }
  std::string why = rc == Z_STREAM_END ? "ok" : (z.msg ? z.msg : std::to_string(rc));
  inflateEnd(&z);
  AFT_CHECK(out.size() <= out_size, "{}: corrupt zip (the member inflates to more than the {} bytes it declares)",
            path, out_size);
  AFT_CHECK(rc != Z_STREAM_END || out.size() == out_size,
            "{}: corrupt zip (the member inflates to {} bytes, not the {} bytes it declares)", path, out.size(), out_size);
  AFT_CHECK(rc == Z_STREAM_END && out.size() == out_size,
            "{}: corrupt or truncated compressed data (zlib: {}, {} of {} bytes inflated)", path, why, out.size(),
            out_size);
  return out;
}

}  // namespace

void check_regular_file(const std::string& path) {
  struct stat st;
  AFT_CHECK(::stat(path.c_str(), &st) == 0, "{}: cannot open: {}", path, std::strerror(errno));
  AFT_CHECK(!S_ISDIR(st.st_mode), "{}: is a directory, not a file", path);
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  check_regular_file(path);
  FILE* f = std::fopen(path.c_str(), "rb");
  AFT_CHECK(f != nullptr, "{}: cannot open: {}", path, std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  AFT_CHECK(err == 0, "{}: read error: {}", path, std::strerror(err));
  return out;
}

std::vector<uint8_t> read_gzip(const std::string& path) {
  check_regular_file(path);
  gzFile g = gzopen(path.c_str(), "rb");
  AFT_CHECK(g != nullptr, "{}: cannot open: {}", path, std::strerror(errno));
  gzbuffer(g, 1 << 17);
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  int n;
  while ((n = gzread(g, buf.data(), static_cast<unsigned>(buf.size()))) > 0)
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  int errnum = 0;
  const char* msg = gzerror(g, &errnum);
  std::string m = msg ? msg : "";
  gzclose(g);
  AFT_CHECK(n == 0 && errnum == Z_OK, "{}: corrupt or truncated gzip data ({})", path, m);
  return out;
}

std::vector<uint8_t> read_zip_member(const std::string& path, const std::string& member) {
  std::vector<uint8_t> z = read_file_bytes(path);
  const size_t n = z.size();
  // The end-of-central-directory record: the last 22 bytes plus at most a 64 KiB comment.
  AFT_CHECK(n >= 22, "{}: too short for a zip file ({} bytes)", path, n);
  size_t eocd = n;
  for (size_t i = n - 22 + 1; i-- > (n > 22 + 65535 ? n - 22 - 65535 : 0);) {
    if (le32(&z[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  AFT_CHECK(eocd != n, "{}: not a zip file (no end-of-central-directory record)", path);
  uint32_t entries = le16(&z[eocd + 10]);
  uint32_t cd_size = le32(&z[eocd + 12]), cd_off = le32(&z[eocd + 16]);
  AFT_CHECK(cd_off != 0xFFFFFFFFu && entries != 0xFFFF, "{}: zip64 archives are not supported", path);
  AFT_CHECK(static_cast<size_t>(cd_off) + cd_size <= eocd, "{}: corrupt zip (central directory out of range)", path);
  struct Entry {
    std::string name;
    uint32_t method, crc, csize, usize, local;
  };
  std::vector<Entry> files;
  size_t p = cd_off;
  for (uint32_t e = 0; e < entries; ++e) {
    AFT_CHECK(p + 46 <= eocd && le32(&z[p]) == 0x02014b50, "{}: corrupt zip (central directory entry {})", path, e);
    Entry en;
    en.method = le16(&z[p + 10]);
    en.crc = le32(&z[p + 16]);
    en.csize = le32(&z[p + 20]);
    en.usize = le32(&z[p + 24]);
    uint32_t nlen = le16(&z[p + 28]), xlen = le16(&z[p + 30]), clen = le16(&z[p + 32]);
    en.local = le32(&z[p + 42]);
    AFT_CHECK(p + 46 + nlen <= eocd, "{}: corrupt zip (entry name)", path);
    en.name.assign(reinterpret_cast<const char*>(&z[p + 46]), nlen);
    if (!en.name.empty() && en.name.back() != '/') files.push_back(en);
    p += 46 + nlen + xlen + clen;
  }
  const Entry* pick = nullptr;
  std::string names;
  for (const Entry& f : files) {
    names += (names.empty() ? "" : ", ") + f.name;
    if (!member.empty() && f.name == member) pick = &f;
  }
  if (member.empty()) {
    AFT_CHECK(files.size() == 1, "{}: the zip holds {} files ({}); name the one to read", path, files.size(), names);
    pick = &files[0];
  }
  AFT_CHECK(pick != nullptr, "{}: no member '{}' in the zip (it holds: {})", path, member, names);
  AFT_CHECK(pick->csize != 0xFFFFFFFFu && pick->usize != 0xFFFFFFFFu, "{}: zip64 members are not supported", path);
  size_t lh = pick->local;
  AFT_CHECK(lh + 30 <= n && le32(&z[lh]) == 0x04034b50, "{}: corrupt zip (local header of {})", path, pick->name);
  size_t data = lh + 30 + le16(&z[lh + 26]) + le16(&z[lh + 28]);
  AFT_CHECK(data + pick->csize <= n, "{}: truncated zip ({} needs {} bytes at offset {}, the file has {})", path,
            pick->name, pick->csize, data, n);
  std::vector<uint8_t> out;
  if (pick->method == 0) {
    AFT_CHECK(pick->csize == pick->usize, "{}: corrupt zip (stored member sizes differ)", path);
    out.assign(z.begin() + static_cast<ptrdiff_t>(data), z.begin() + static_cast<ptrdiff_t>(data + pick->csize));
  } else {
    AFT_CHECK(pick->method == 8, "{}: member {} uses compression method {} (only stored and deflate are supported)",
              path, pick->name, pick->method);
    out = inflate_raw(path, z.data() + data, pick->csize, pick->usize);
  }
  uint32_t crc = static_cast<uint32_t>(crc32_z(0L, out.data(), out.size()));
  AFT_CHECK(crc == pick->crc, "{}: CRC-32 mismatch in {} (the file is corrupt)", path, pick->name);
  return out;
}

std::vector<uint8_t> read_data_file(const std::string& path, std::string* how) {
  check_regular_file(path);
  FILE* f = std::fopen(path.c_str(), "rb");
  AFT_CHECK(f != nullptr, "{}: cannot open: {}", path, std::strerror(errno));
  uint8_t magic[4] = {0, 0, 0, 0};
  size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    if (how) *how = "gzip";
    return read_gzip(path);
  }
  if (got == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) {
    if (how) *how = "zip";
    return read_zip_member(path);
  }
  if (how) *how = "raw";
  return read_file_bytes(path);
}

}  // namespace aft::files
