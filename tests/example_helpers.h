// tests/example_helpers.h: what the tests of the example programs (test_enwik8, test_cifar10,
// test_imagenet) share: a scratch directory per test binary, and writing input files as they
// are or gzipped (zlib, linked through examples/common).
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace aft::test {

// <temp>/aft_test_<name>_<pid>, created; emptied first when `fresh`.
inline std::filesystem::path scratch_dir(const std::string& name, bool fresh = false) {
  std::filesystem::path d =
      std::filesystem::temp_directory_path() / ("aft_test_" + name + "_" + std::to_string(::getpid()));
  if (fresh) std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Writes the bytes to p, creating p's directory.
inline void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::FILE* f = std::fopen(p.c_str(), "wb");
  REQUIRE_MESSAGE(f, "cannot write ", p.string());
  if (!b.empty()) REQUIRE(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  std::fclose(f);
}

// Writes the bytes to p as one gzip member (level 1), in pieces of at most 1 GiB (gzwrite
// takes an unsigned count).
inline void write_gzip(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
  gzFile g = gzopen(p.c_str(), "wb1");
  REQUIRE_MESSAGE(g, "cannot write ", p.string());
  size_t done = 0;
  while (done < b.size()) {
    unsigned n = static_cast<unsigned>(std::min<size_t>(b.size() - done, 1u << 30));
    REQUIRE(gzwrite(g, b.data() + done, n) == static_cast<int>(n));
    done += n;
  }
  gzclose(g);
}

}  // namespace aft::test
