// tests/test_hostile_input.cpp: the example programs' readers and entry points given what a
// careless or hostile user gives them (docs/reliability.md): archives whose headers lie about
// sizes (refused with memory bounded by the bytes present), JPEGs whose headers claim pixels
// the data does not hold, a data set with no readable image (an error naming the split, not a
// hang), directories where files are expected, out-of-range numbers on the command line, and
// exceptions other than aft::Error reaching a program's entry.
#include <sys/resource.h>

#include <filesystem>
#include <new>
#include <stdexcept>

#include "../examples/cifar10/data.h"
#include "../examples/common/cli.h"
#include "../examples/common/files.h"
#include "../examples/common/program.h"
#include "../examples/common/tar.h"
#include "../examples/enwik8/corpus.h"
#include "../examples/imagenet/jpeg.h"
#include "../examples/imagenet/loader.h"
#include "archive_writers.h"
#include "example_helpers.h"
#include "helpers.h"

using namespace aft;
using namespace aft::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch() { return scratch_dir("hostile"); }

// The process's peak resident memory so far, in MiB (a high-water mark: it never goes down).
double peak_rss_mib() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Runs f, which must throw aft::Error containing `needle`, and checks that the peak memory grew
// by less than 64 MiB meanwhile (the lying sizes below are 2 GiB to 1 TiB).
template <class F>
void check_refused_cheaply(F&& f, const std::string& needle) {
  const double before = peak_rss_mib();
  check_error(std::forward<F>(f), needle);
  CHECK(peak_rss_mib() - before < 64);
}

// A smooth RGB test image encoded as a JPEG.
std::vector<uint8_t> jpeg_of(int w, int h, bool progressive) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 7 / 3) % 251);
  return imagenet::encode_jpeg(px.data(), w, h, 3, 90, progressive);
}

// Sets the image size in a JPEG's frame header (SOF0 baseline or SOF2 progressive):
// FF C0/C2, length (2), precision (1), height (2), width (2), big-endian.
void set_jpeg_size(std::vector<uint8_t>& j, int w, int h) {
  for (size_t i = 2; i + 9 < j.size(); ++i)
    if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) {
      j[i + 5] = static_cast<uint8_t>(h >> 8);
      j[i + 6] = static_cast<uint8_t>(h);
      j[i + 7] = static_cast<uint8_t>(w >> 8);
      j[i + 8] = static_cast<uint8_t>(w);
      return;
    }
  FAIL("no SOF marker");
}

}  // namespace

TEST_CASE("tar: a member whose header claims 2 GiB or 1 TiB is refused without allocating it") {
  fs::path dir = scratch();
  for (uint64_t claim : {uint64_t{2} << 30, uint64_t{1} << 40}) {
    TarWriter t;
    t.header("cifar-10-batches-bin/test_batch.bin", claim, '0');
    t.data(std::vector<uint8_t>(100, 7));
    fs::path p = dir / "lie.tar.gz";
    write_gzip(p, t.out);
    check_refused_cheaply([&] { files::read_tar(p.string(), [](const std::string&, uint64_t) { return true; }); },
                          fmt::format("should hold {} bytes, only 512 are there", claim));
    // Through the CIFAR-10 reader, as `cifar10 train --data lie.tar.gz` reads it.
    check_refused_cheaply([&] { cifar10::load_cifar10(p.string(), true); }, "truncated tar archive");
  }
}

TEST_CASE("zip: a member declaring 4 GB (or fewer bytes than it holds) is refused, memory bounded") {
  fs::path dir = scratch();
  std::vector<uint8_t> text(5000, 'a');
  write_bytes(dir / "lie.zip", make_zip("enwik8", text, false, 0xFFFFFFF0));
  check_refused_cheaply([&] { files::read_zip_member((dir / "lie.zip").string()); },
                        "inflates to 5000 bytes, not the 4294967280 bytes it declares");
  check_refused_cheaply([&] { enwik8::load_corpus((dir / "lie.zip").string()); }, "lie.zip");
  write_bytes(dir / "short.zip", make_zip("enwik8", text, false, 100));
  check_error([&] { files::read_zip_member((dir / "short.zip").string()); }, "more than the 100 bytes it declares");
  write_bytes(dir / "good.zip", make_zip("enwik8", text));
  CHECK(files::read_zip_member((dir / "good.zip").string()) == text);
}

TEST_CASE("a directory where a data file is expected is named as such") {
  fs::path dir = scratch() / "a_directory";
  fs::create_directories(dir);
  check_error([&] { files::read_file_bytes(dir.string()); }, "a_directory: is a directory, not a file");
  check_error([&] { files::read_data_file(dir.string()); }, "is a directory, not a file");
  check_error([&] { enwik8::load_corpus(dir.string()); }, "is a directory, not a file");
  check_error([&] { imagenet::decode_jpeg_file(dir.string()); }, "is a directory, not a file");
}

TEST_CASE("jpeg: a header claiming more pixels than the data holds is an error, not grey padding") {
  // Baseline: 64x64 pixels of data, a header saying 64x2048. The ratio of pixels to bytes is
  // plausible, so the decoder runs and meets the end of the data inside the image.
  std::vector<uint8_t> j = jpeg_of(64, 64, false);
  CHECK(imagenet::decode_jpeg(j.data(), j.size(), "ok.jpg").image.height == 64);
  set_jpeg_size(j, 64, 2048);
  check_error([&] { imagenet::decode_jpeg(j.data(), j.size(), "tall.jpg"); }, "tall.jpg: cannot decode JPEG: the image data ends");
  // Progressive: the same, in every scan.
  std::vector<uint8_t> p = jpeg_of(48, 48, true);
  CHECK(imagenet::decode_jpeg(p.data(), p.size(), "ok.jpg").image.width == 48);
  set_jpeg_size(p, 48, 1024);
  check_error([&] { imagenet::decode_jpeg(p.data(), p.size(), "tall.jpg"); }, "the image data ends");
}

TEST_CASE("jpeg: a small progressive file claiming 16000x16000 pixels is refused before decoding") {
  std::vector<uint8_t> p = jpeg_of(16, 16, true);
  REQUIRE(p.size() < 2000);
  set_jpeg_size(p, 16000, 16000);
  const double before = peak_rss_mib();
  check_error([&] { imagenet::decode_jpeg(p.data(), p.size(), "bomb.jpg"); }, "the header lies");
  check_error([&] { imagenet::read_jpeg_info(p.data(), p.size(), "bomb.jpg"); }, "cannot be held by a file of");
  CHECK(peak_rss_mib() - before < 64);
  // A real image is far below the bound (a complete Huffman-coded image holds at most 512
  // pixels per byte): a flat grey 512x512 progressive grayscale file decodes.
  std::vector<uint8_t> flat(512 * 512, 128);
  std::vector<uint8_t> g = imagenet::encode_jpeg(flat.data(), 512, 512, 1, 90, true);
  CHECK(static_cast<int64_t>(g.size()) * imagenet::kMaxPixelsPerByte >= 512 * 512);
  CHECK(imagenet::decode_jpeg(g.data(), g.size(), "flat.jpg").image.width == 512);
}

TEST_CASE("loader: a split with no readable image is an error naming it, not endless empty batches") {
  fs::path root = scratch() / "unreadable";
  for (const char* c : {"a", "b"})
    for (int i = 0; i < 3; ++i) write_bytes(root / "train" / c / fmt::format("{}.jpg", i), {'n', 'o', 'p', 'e'});
  imagenet::Dataset d = imagenet::scan_image_folder(root.string(), "train");
  imagenet::LoaderConfig lc;
  lc.batch = 2;
  lc.transform.size = 8;
  lc.shuffle = true;
  lc.drop_last = true;
  lc.log = nullptr;
  imagenet::Loader l(d, lc);
  // What `imagenet train` does: ask for batches until one holds an image. It must end.
  check_error(
      [&] {
        for (int k = 0; k < 1000; ++k)
          if (l.next()->labels.size(0) > 0) return;
      },
      "unreadable/train: none of its 6 images can be read");
  // One readable image is enough to go on: batches without it are empty, not errors.
  write_bytes(root / "train" / "a" / "0.jpg", jpeg_of(16, 16, false));
  imagenet::Loader l2(d, lc);
  int nonempty = 0;
  for (int k = 0; k < 12; ++k) nonempty += l2.next()->labels.size(0) > 0;
  CHECK(nonempty > 0);
}

TEST_CASE("command line: out-of-range and non-finite numbers are refused, naming the option") {
  int64_t steps = 1, threads = 0;
  double lr = 1;
  cli::Cli c("t", "test");
  c.add("--steps", &steps, "");
  c.add("--threads", &threads, "");
  c.add("--lr", &lr, "");
  auto parse = [&](std::vector<std::string> args) {
    std::vector<char*> argv{const_cast<char*>("t")};
    for (auto& a : args) argv.push_back(a.data());
    c.parse(static_cast<int>(argv.size()), argv.data());
  };
  check_error([&] { parse({"--steps", "99999999999999999999"}); }, "--steps: 99999999999999999999 is out of range");
  check_error([&] { parse({"--steps=-99999999999999999999"}); }, "out of range");
  check_error([&] { parse({"--lr", "1e999"}); }, "--lr: expected a finite number");
  check_error([&] { parse({"--lr", "nan"}); }, "expected a finite number");
  parse({"--steps", "9223372036854775807"});
  CHECK(steps == INT64_MAX);
  examples::RunOptions o;
  o.threads = -4;
  check_error([&] { examples::setup_run(o, "t"); }, "--threads must be in [0, 1024]");
  o.threads = 100000;
  check_error([&] { examples::setup_run(o, "t"); }, "got 100000");
}

namespace {
int throws_filesystem_error(int, char**) {
  throw fs::filesystem_error("cannot create directories", fs::path("file/run"),
                             std::make_error_code(std::errc::not_a_directory));
}
int throws_bad_alloc(int, char**) { throw std::bad_alloc(); }
int throws_aft_error(int, char**) { AFT_ERROR("a clear message"); }
}  // namespace

TEST_CASE("a program's entry reports any exception as an error with status 1, never terminate") {
  char prog[] = "prog", cmd[] = "go";
  char* argv[] = {prog, cmd, nullptr};
  CHECK(examples::run_program(2, argv, "prog", "usage\n", {{"go", throws_filesystem_error}}) == 1);
  CHECK(examples::run_program(2, argv, "prog", "usage\n", {{"go", throws_bad_alloc}}) == 1);
  CHECK(examples::run_program(2, argv, "prog", "usage\n", {{"go", throws_aft_error}}) == 1);
}
