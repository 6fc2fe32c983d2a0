// examples/common/files.h: reading data files whole, compressed or not, with errors that name
// the file and say what is wrong with it.
//
// read_file_bytes() reads a file as it is; read_data_file() also undoes compression, told
// apart by the first bytes: gzip (1f 8b) through zlib's gz reader, zip (PK\3\4) through the
// central directory and zlib's raw inflate (stored or deflated members; the CRC-32 and size
// are checked), anything else as raw bytes.
//
// Memory is bounded by the data really present: sizes in a zip's headers are checked against
// what inflating produces, never allocated ahead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aft::files {

// aft::Error naming the path when it does not exist, cannot be read, or is a directory.
void check_regular_file(const std::string& path);

std::vector<uint8_t> read_file_bytes(const std::string& path);

// gzip: the whole decompressed stream (concatenated members too).
std::vector<uint8_t> read_gzip(const std::string& path);

// zip: the member called `member` (empty: the only file member; an error if there are several).
std::vector<uint8_t> read_zip_member(const std::string& path, const std::string& member = "");

// By content: gzip, zip (its only member) or raw. `how` (optional) gets "gzip", "zip" or "raw".
std::vector<uint8_t> read_data_file(const std::string& path, std::string* how = nullptr);

}  // namespace aft::files
