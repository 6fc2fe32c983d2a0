// tests/fuzz/make_seeds.cpp: writes the fuzzers' seed corpora: small valid inputs of every
// format, made here (the repository holds no data files): make_seeds DIR writes DIR/<fuzzer>/*.
// Starting from valid files lets the fuzzers reach deep into each reader within seconds.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../../examples/imagenet/jpeg.h"
#include "../archive_writers.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

void put(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (!f || (!b.empty() && std::fwrite(b.data(), 1, b.size(), f) != b.size())) throw std::runtime_error(p.string());
  std::fclose(f);
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// One gzip member (deflate with the gzip wrapper: windowBits 15 + 16).
Bytes gzip(const Bytes& in) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("zlib");
  Bytes out(deflateBound(&z, in.size()) + 32);
  z.next_in = const_cast<uint8_t*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("zlib");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A safetensors file: header padded with spaces to a multiple of 8, then the data.
Bytes safetensors(const std::string& header_json, const Bytes& data) {
  std::string h = header_json;
  h.append((8 - h.size() % 8) % 8, ' ');
  Bytes out(8);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// n CIFAR-10 records: label, then 3,072 plane bytes.
Bytes cifar_records(int n) {
  Bytes b;
  for (int r = 0; r < n; ++r) {
    b.push_back(static_cast<uint8_t>(r % 10));
    for (int j = 0; j < 3072; ++j) b.push_back(static_cast<uint8_t>((j / 32 + r) % 256));
  }
  return b;
}

Bytes image(int w, int h, int c) {
  Bytes p(static_cast<size_t>(w) * h * c);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>((i * 13 / 7) % 256);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];
  const std::string lorem =
      "<page><title>AFT</title><text>An Attention Free Transformer mixes tokens with learned position biases, "
      "without dot-product attention.</text></page>\n";

  put(dir / "json/config", text(R"({"program": "enwik8", "model": {"dim": 128, "layers": [1, 2.5e-3, -0]}, "ok": true})"));
  put(dir / "json/escapes", text(R"(["a\"b\\c\u00e9\ud83d\ude00", null, false, {"": {}}])"));
  put(dir / "json/number", text("-12.5e+3"));

  const std::string hdr =
      R"({"__metadata__":{"aft.format":"aft-checkpoint-1","aft.step":"3"},)"
      R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},)"
      R"("m":{"dtype":"BOOL","shape":[3],"data_offsets":[20,23]},"e":{"dtype":"I64","shape":[0,4],"data_offsets":[23,23]}})";
  Bytes data(23, 0);
  data[20] = 1;
  put(dir / "safetensors/checkpoint", safetensors(hdr, data));
  put(dir / "safetensors/empty", safetensors("{}", {}));

  aft::test::TarWriter t;
  t.dir("data/");
  t.file("data/a.txt", text(lorem));
  t.file("b.bin", Bytes(700, 7), "some/prefix");
  t.long_name(std::string(120, 'n') + ".txt", text("long"));
  Bytes tar = t.finish();
  put(dir / "tar/plain", tar);
  put(dir / "tar/gzipped", gzip(tar));

  put(dir / "zip/one", aft::test::make_zip("enwik8", text(lorem)));
  put(dir / "zip/empty_member", aft::test::make_zip("e", {}));

  put(dir / "gzip/text", gzip(text(lorem)));
  put(dir / "gzip/two_members", [&] {
    Bytes a = gzip(text("first ")), b = gzip(text("second"));
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }());

  aft::test::TarWriter c;
  c.dir("cifar-10-batches-bin/");
  c.file("cifar-10-batches-bin/data_batch_1.bin", cifar_records(1));
  c.file("cifar-10-batches-bin/test_batch.bin", cifar_records(2));
  Bytes ctar = c.finish();
  put(dir / "cifar10/tarball", gzip(ctar));
  put(dir / "cifar10/plain_tar", ctar);
  put(dir / "cifar10/batch", cifar_records(1));

  using aft::imagenet::encode_jpeg;
  put(dir / "jpeg/rgb", encode_jpeg(image(16, 12, 3).data(), 16, 12, 3, 75));
  put(dir / "jpeg/gray_progressive", encode_jpeg(image(9, 17, 1).data(), 9, 17, 1, 80, true));
  put(dir / "jpeg/cmyk", encode_jpeg(image(8, 8, 4).data(), 8, 8, 4, 60));
  put(dir / "jpeg/rgb_progressive", encode_jpeg(image(20, 20, 3).data(), 20, 20, 3, 50, true));

  Bytes corpus;
  for (int i = 0; i < 3; ++i) corpus.insert(corpus.end(), lorem.begin(), lorem.end());
  put(dir / "corpus/raw", corpus);
  put(dir / "corpus/gzip", gzip(corpus));
  put(dir / "corpus/zip", aft::test::make_zip("enwik8", corpus));
  std::printf("seed corpora written to %s\n", dir.c_str());
  return 0;
}
