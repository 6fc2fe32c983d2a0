// tests/fuzz/fuzz_corpus.cpp: the byte-corpus loader and splitter of the character LM
// (examples/enwik8/corpus.cpp) on any file (raw, gzip or zip by content): three splits that
// cover the bytes in order, or aft::Error.
#include <cstdlib>

#include "../../examples/enwik8/corpus.h"
#include "fuzz_common.h"

// corpus.cpp refers to the corpus embedded in the program; the fuzzer has none.
extern "C" const uint8_t aft_enwik8_corpus_begin[1] = {0};
extern "C" const uint8_t aft_enwik8_corpus_end[1] = {0};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = aft::fuzz::input_file(data, size, ".corpus");
  aft::fuzz::expect_result_or_error([&] {
    aft::enwik8::Corpus c = aft::enwik8::load_corpus(path, "auto");
    size_t total = c.split("train").size() + c.split("valid").size() + c.split("test").size();
    if (total != c.bytes.size() || c.split("train").empty() || c.split("valid").empty() || c.split("test").empty())
      std::abort();
  });
  return 0;
}
