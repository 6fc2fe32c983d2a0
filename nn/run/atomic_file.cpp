// nn/run/atomic_file.cpp: the temporary-file-and-rename writer of nn/run/atomic_file.h.
#include "nn/run/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/format.h"

namespace aft::nn {

namespace {

std::string os_error() { return std::strerror(errno); }

// Writes all n bytes (write() may write fewer, or be interrupted).
bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

AtomicFile::AtomicFile(const std::string& target) : target_(target) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; fd_ < 0; ++attempt) {
    tmp_ = fmt::format("{}.tmp.{}.{}", target, ::getpid(), counter.fetch_add(1));
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && !(errno == EEXIST && attempt < 100))
      AFT_ERROR("cannot write '{}': cannot create '{}': {}", target_, tmp_, os_error());
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* p, size_t n) {
  AFT_CHECK(write_all(fd_, p, n), "cannot write '{}' (through '{}'): {}", target_, tmp_, os_error());
}

void AtomicFile::commit() {
  AFT_CHECK(::fsync(fd_) == 0, "cannot write '{}': cannot sync '{}': {}", target_, tmp_, os_error());
  int rc = ::close(fd_);
  fd_ = -1;
  AFT_CHECK(rc == 0, "cannot write '{}': cannot close '{}': {}", target_, tmp_, os_error());
  AFT_CHECK(::rename(tmp_.c_str(), target_.c_str()) == 0, "cannot write '{}': cannot rename '{}' to it: {}", target_,
            tmp_, os_error());
  committed_ = true;
  size_t slash = target_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : target_.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace aft::nn
