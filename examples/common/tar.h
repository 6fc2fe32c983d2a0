// examples/common/tar.h: reading members of a tar archive, plain or gzip-compressed (a .tar.gz
// as data sets are distributed), in one streaming pass through zlib, without an external tar.
//
// Formats: POSIX ustar (name = prefix/name), GNU long names (type 'L') and pax extended headers
// (type 'x', its "path" record), sizes in octal or GNU base-256. Every header's checksum is
// checked; a bad checksum, a member cut short or a corrupt gzip stream is an aft::Error naming
// the file and the member. Memory grows with the bytes really read, never with the size a header
// claims (a 100-byte .tar.gz claiming a 1 TiB member is a "truncated" error, not an allocation).
// Only regular files are returned (directories, links and the rest are
// skipped); the archive ends at its first all-zero header or at the end of the file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace aft::files {

struct TarMember {
  std::string name;           // path inside the archive, e.g. "cifar-10-batches-bin/test_batch.bin"
  std::vector<uint8_t> data;  // its bytes (empty when `want` declined it)
  uint64_t size = 0;
};

// Reads the archive at `path`. For each regular file, want(name, size) says whether to keep its
// bytes (the others are read past, not stored). Returns every regular file, in archive order,
// with data for the kept ones.
std::vector<TarMember> read_tar(const std::string& path,
                                const std::function<bool(const std::string& name, uint64_t size)>& want);

// The part of a path after its last '/'.
std::string base_name(const std::string& path);

}  // namespace aft::files
