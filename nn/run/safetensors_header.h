// nn/run/safetensors_header.h: the part of the safetensors reader that decides what a file
// holds, before any tensor exists: the header length, the JSON header, each entry's dtype,
// shape and byte span, and that the spans tile the data exactly. It needs no tensors (only JSON
// and files), so the fuzzer tests/fuzz/fuzz_safetensors.cpp builds it alone; checkpoint.cpp
// reads the tensors it describes.
//
// Every size here is checked against the file's size before anything is allocated: the header
// (at most 100 MB and the bytes that follow the length), each tensor (its shape's byte count
// must equal its span, which must lie in the data). So memory is bounded by the file size.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace aft::nn::safetensors {

// A dtype as files name it: its size in the file, and what aft holds after reading.
struct FileDType {
  std::string_view code;
  size_t size;
  DType dtype;
};

// One tensor entry, checked: a known dtype, at most 8 dimensions, numel × size == end − begin,
// and [begin, end) inside the data.
struct Entry {
  std::string name;
  const FileDType* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets in the data (after the header)
};

// A file opened for reading at offsets; errors name the path.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  uint64_t size() const { return size_; }
  // Exactly n bytes at offset `at`; a short read means the file shrank since it was opened.
  void read(uint64_t at, void* p, size_t n);

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct Header {
  std::vector<Entry> entries;                  // in the header's order
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_start = 0;                     // 8 + header length
};

// Reads and checks the header of a safetensors file (aft::Error naming `path` and the reason).
Header read_header(InputFile& file, const std::string& path);

}  // namespace aft::nn::safetensors
