// nn/run/atomic_file.h: writing a file so that readers see either the old one or the new one,
// never a mix, and a failure leaves nothing behind.
//
// AtomicFile creates "<target>.tmp.<pid>.<n>" beside the target (same directory, so rename is
// atomic), takes the bytes, and commit() fsyncs, closes and renames it over the target, then
// syncs the directory. Destroyed without commit() (an exception, a failed write), it removes
// its temporary file. Every failure is an aft::Error naming the file and the OS's reason
// ("No space left on device", "Permission denied", ...). Checkpoints (nn/run/checkpoint.cpp),
// metrics, curves and the programs' PNG and CSV files are all written this way.
#pragma once

#include <cstddef>
#include <string>

namespace aft::nn {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* p, size_t n);
  // Data on disk (fsync), then the new name; then the directory entry (best effort: some file
  // systems cannot sync a directory, and the data is safe either way).
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string target_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace aft::nn
