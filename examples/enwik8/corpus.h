// examples/enwik8/corpus.h: the byte corpus of the character LM and its train/valid/test split.
//
// Enwik8 is the first 100,000,000 bytes of an English Wikipedia XML dump; the standard split is
// the first 90M bytes for training, the next 5M for validation and the last 5M for testing, and
// every byte is a token (vocabulary 256). Any other byte file (raw, .gz or .zip) is split the
// same way, 90% / 5% / 5% in file order, and the sizes used are reported. With no file, the
// corpus embedded in the program is used: aft's own documentation and source code.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace aft::enwik8 {

inline constexpr int64_t kEnwik8Bytes = 100'000'000;

struct Corpus {
  std::vector<uint8_t> bytes;
  int64_t train_end = 0, valid_end = 0;  // train [0, train_end), valid [train_end, valid_end)
  std::string description;               // where it came from and how it was split

  std::span<const uint8_t> split(const std::string& name) const;  // "train" | "valid" | "test"
};

// dataset: "enwik8" (the file must be Enwik8: exactly 100,000,000 bytes once decompressed),
// "bytes" (any file, 90/5/5) or "auto" (enwik8 when the size matches, else bytes).
Corpus load_corpus(const std::string& path, const std::string& dataset = "auto");
// The corpus compiled into the program (no download needed).
Corpus embedded_corpus();
// Splits any byte sequence 90/5/5 (at least one byte in each part).
Corpus split_bytes(std::vector<uint8_t> bytes, const std::string& source);

}  // namespace aft::enwik8
