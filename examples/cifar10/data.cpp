// examples/cifar10/data.cpp: the CIFAR-10 reader (see data.h). It needs no tensors, so the
// fuzzer tests/fuzz/fuzz_cifar10.cpp builds it alone; augmentation and batches are in
// batches.cpp.
#include "data.h"

#include <algorithm>
#include <filesystem>

#include "../common/files.h"
#include "../common/tar.h"
#include "core/error.h"
#include "core/format.h"

namespace aft::cifar10 {

namespace fs = std::filesystem;

namespace {

const char* const kTrainFiles[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                    "data_batch_5.bin"};
const char* const kTestFile = "test_batch.bin";
const char* const kWhere = "download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (the binary version)";

std::string with_commas(int64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

// The files found, by name: slot 0..4 the training batches, 5 the test batch.
struct Found {
  Images parts[6];
  bool have[6] = {};
};

int slot_of(const std::string& base) {
  for (int i = 0; i < 5; ++i)
    if (base == kTrainFiles[i]) return i;
  return base == kTestFile ? 5 : -1;
}

Dataset assemble(Found& f, const std::string& where, bool with_train) {
  Dataset d;
  std::string names;
  for (int i = 0; i < 5; ++i) {
    if (!f.have[i]) continue;
    d.train.append(f.parts[i]);
    ++d.train_batches;
    names += (names.empty() ? "" : ", ") + std::string(kTrainFiles[i]).substr(0, 12);
  }
  if (with_train)
    AFT_CHECK(d.train_batches > 0, "{}: no training batch (data_batch_1.bin … data_batch_5.bin) found; {}", where,
              kWhere);
  d.test = std::move(f.parts[5]);
  if (with_train)
    d.description = fmt::format("CIFAR-10 from {}: {} training images ({} of 5 batches: {}), {} test images", where,
                                with_commas(d.train.size()), d.train_batches, names, with_commas(d.test.size()));
  else
    d.description = fmt::format("CIFAR-10 from {}: {} test images", where, with_commas(d.test.size()));
  return d;
}

}  // namespace

void Images::append(const Images& o) {
  pixels.insert(pixels.end(), o.pixels.begin(), o.pixels.end());
  labels.insert(labels.end(), o.labels.begin(), o.labels.end());
}

Images parse_batch(std::span<const uint8_t> bytes, const std::string& name) {
  const int64_t n = static_cast<int64_t>(bytes.size());
  AFT_CHECK(n > 0 && n % kRecord == 0,
            "{}: {} bytes is not a whole number of 3,073-byte CIFAR-10 records ({} records and {} bytes over); "
            "the file is truncated or not a CIFAR-10 binary batch",
            name, n, n / kRecord, n % kRecord);
  const int64_t N = n / kRecord;
  Images im;
  im.pixels.resize(static_cast<size_t>(N * kDims));
  im.labels.resize(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t* r = bytes.data() + i * kRecord;
    AFT_CHECK(r[0] < 10, "{}: record {} has label {}, not 0..9: not a CIFAR-10 binary batch", name, i, r[0]);
    im.labels[i] = r[0];
    // Planes R, G, B of 1,024 bytes (row-major) -> interleaved: t = 3·p + c.
    uint8_t* out = im.pixels.data() + i * kDims;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < kPixels; ++p) out[3 * p + c] = r[1 + c * kPixels + p];
  }
  return im;
}

Dataset load_cifar10(const std::string& path, bool with_train) {
  AFT_CHECK(!path.empty(), "no CIFAR-10 data given (--data DIR or --data cifar-10-binary.tar.gz); {}", kWhere);
  std::error_code ec;
  AFT_CHECK(fs::exists(path, ec), "{}: no such file or directory; {}", path, kWhere);
  Found f;
  if (fs::is_directory(path, ec)) {
    fs::path dir = path;
    if (!fs::exists(dir / kTestFile) && fs::is_directory(dir / "cifar-10-batches-bin")) dir /= "cifar-10-batches-bin";
    AFT_CHECK(fs::exists(dir / kTestFile), "{}: no {} (the CIFAR-10 test batch) here; {} and unpack it here, or pass "
              "the .tar.gz itself", dir.string(), kTestFile, kWhere);
    for (int i = 0; i < 6; ++i) {
      if (i < 5 && !with_train) continue;
      fs::path p = dir / (i < 5 ? kTrainFiles[i] : kTestFile);
      if (!fs::exists(p)) continue;
      f.parts[i] = parse_batch(files::read_file_bytes(p.string()), p.string());
      f.have[i] = true;
    }
    return assemble(f, dir.string(), with_train);
  }
  AFT_CHECK(fs::path(path).extension() != ".bin",
            "{}: give the directory that holds the CIFAR-10 .bin files (or the .tar.gz), not one batch file", path);
  std::vector<files::TarMember> members = files::read_tar(path, [&](const std::string& name, uint64_t) {
    int s = slot_of(files::base_name(name));
    return s == 5 || (s >= 0 && with_train);
  });
  for (const files::TarMember& m : members) {
    int s = slot_of(files::base_name(m.name));
    if (s < 0 || (s < 5 && !with_train)) continue;
    AFT_CHECK(!f.have[s], "{}: the archive holds {} twice", path, files::base_name(m.name));
    f.parts[s] = parse_batch(m.data, path + ":" + m.name);
    f.have[s] = true;
  }
  if (!f.have[5]) {
    std::string listing;
    for (size_t i = 0; i < members.size() && i < 8; ++i) listing += (i ? ", " : "") + members[i].name;
    if (members.size() > 8) listing += ", …";
    AFT_ERROR("{}: the archive has no {} (the CIFAR-10 test batch); it holds {} files{}{}; {}", path, kTestFile,
              members.size(), members.empty() ? "" : ": ", listing, kWhere);
  }
  return assemble(f, path, with_train);
}

}  // namespace aft::cifar10
