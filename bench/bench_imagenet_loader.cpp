// bench/bench_imagenet_loader.cpp: images per second of the ImageNet example's input pipeline
// alone (examples/imagenet: libjpeg-turbo decoding, crop, resize, normalise), no model.
//
// (1) one thread, the first --images files: decoding at full size; the training transform
//     (random-resized crop, decoded at the DCT scale the crop allows); the evaluation transform.
// (2) the prefetching Loader with 1, 2, ... worker threads (--workers): --batches batches of
//     --batch images after one batch of warm-up; the consumer only takes the batches.
// Without --data the benchmark writes its own set (--images JPEGs of 224×224 (a quarter
// grayscale) and 500×375, quality 90) into a temporary folder and removes it afterwards.
//
//   bench_imagenet_loader [--data ROOT] [--split train] [--size 64] [--batch 64]
//                         [--batches 20] [--workers 1,2] [--images 256]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../examples/common/cli.h"
#include "../examples/common/files.h"
#include "../examples/imagenet/jpeg.h"
#include "../examples/imagenet/loader.h"
#include "../examples/imagenet/transforms.h"
#include "aft.h"
#include "bench_common.h"

using namespace aft;
using namespace aft::imagenet;
namespace fs = std::filesystem;

using aft_bench::cpu_model;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// n JPEGs in root/train/c<k>/: textured colour images, some grayscale, two sizes.
void write_synthetic(const fs::path& root, int n) {
  for (int i = 0; i < n; ++i) {
    const bool big = i % 2 == 1, gray = i % 4 == 0;
    const int w = big ? 500 : 224, h = big ? 375 : 224, comps = gray ? 1 : 3;
    std::vector<uint8_t> px(static_cast<size_t>(w) * h * comps);
    uint32_t s = 2166136261u ^ static_cast<uint32_t>(i);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < comps; ++c) {
          s = s * 1664525u + 1013904223u;  // noise on top of a gradient, like a photo's texture
          px[(static_cast<size_t>(y) * w + x) * comps + c] =
              static_cast<uint8_t>((x * 255 / w + y * (c + 1) * 97 / h + (s >> 28) * 4) & 255);
        }
    std::vector<uint8_t> j = encode_jpeg(px.data(), w, h, comps, 90);
    fs::path dir = root / "train" / fmt::format("c{}", i % 10);
    fs::create_directories(dir);
    std::ofstream(dir / (std::to_string(i) + ".JPEG"), std::ios::binary)
        .write(reinterpret_cast<const char*>(j.data()), static_cast<std::streamsize>(j.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string data, split = "train", workers_list = "1,2";
  int64_t size = 64, batch = 64, batches = 20, images = 256;
  cli::Cli c("bench_imagenet_loader", "Images per second of the ImageNet example's JPEG pipeline, without a model.");
  c.add("--data", &data, "data root (empty: write a synthetic set to a temporary folder)");
  c.add("--split", &split, "folder under the root");
  c.add("--size", &size, "output size S (S×S)");
  c.add("--batch", &batch, "images per batch");
  c.add("--batches", &batches, "batches timed per worker count");
  c.add("--workers", &workers_list, "worker counts to time, comma-separated");
  c.add("--images", &images, "images decoded one by one in part (1); also the size of the synthetic set");
  try {
    if (!c.parse(argc, argv)) return 0;
    fs::path tmp;
    if (data.empty()) {
      tmp = fs::temp_directory_path() / fmt::format("aft_bench_imagenet_{}", ::getpid());
      write_synthetic(tmp, static_cast<int>(images));
      data = tmp.string();
      split = "train";
    }
    Dataset d = scan_image_folder(data, split);
    std::printf("bench_imagenet_loader: %s, %u hardware threads\n", cpu_model().c_str(), std::thread::hardware_concurrency());
    std::printf("data: %s%s; output %lldx%lld\n", d.description().c_str(), tmp.empty() ? "" : " (synthetic)",
                (long long)size, (long long)size);

    // (1) one thread
    const int64_t n = std::min<int64_t>(images, d.size());
    std::vector<std::vector<uint8_t>> bytes;
    for (int64_t i = 0; i < n; ++i) bytes.push_back(files::read_file_bytes(d.paths[static_cast<size_t>(i)]));
    std::vector<float> out(static_cast<size_t>(size * size * 3));
    auto time_one = [&](const char* what, auto&& f) {
      auto t0 = std::chrono::steady_clock::now();
      int64_t ok = 0;
      for (int64_t i = 0; i < n; ++i) {
        try {
          f(i);
          ++ok;
        } catch (const Error&) {
        }
      }
      double s = seconds_since(t0);
      std::printf("one thread  %-34s %8.0f images/s  (%lld images, %.2f s)\n", what, ok / s, (long long)ok, s);
    };
    time_one("decode at full size", [&](int64_t i) {
      decode_jpeg(bytes[i].data(), bytes[i].size(), d.paths[static_cast<size_t>(i)], 8);
    });
    TransformConfig train_t{.size = size, .train = true}, eval_t{.size = size, .train = false};
    time_one("train transform (DCT-scaled decode)", [&](int64_t i) {
      load_transformed(bytes[i].data(), bytes[i].size(), "x", train_t, 1, 0, static_cast<uint64_t>(i), out.data());
    });
    time_one("eval transform (DCT-scaled decode)", [&](int64_t i) {
      load_transformed(bytes[i].data(), bytes[i].size(), "x", eval_t, 1, 0, static_cast<uint64_t>(i), out.data());
    });

    // (2) the loader
    for (size_t pos = 0; pos < workers_list.size();) {
      size_t comma = workers_list.find(',', pos);
      int w = std::stoi(workers_list.substr(pos, comma - pos));
      pos = comma == std::string::npos ? workers_list.size() : comma + 1;
      LoaderConfig lc;
      lc.batch = batch;
      lc.transform = train_t;
      lc.shuffle = true;
      lc.seed = 1;
      lc.workers = w;
      lc.prefetch = 4;
      lc.log = nullptr;
      Loader l(d, lc);
      l.next();  // warm-up
      auto t0 = std::chrono::steady_clock::now();
      int64_t got = 0;
      for (int64_t b = 0; b < batches; ++b) got += l.next()->labels.size(0);
      double s = seconds_since(t0);
      std::printf("loader      %d worker%s, batch %lld, train transform %8.0f images/s  (%lld images, %.2f s)\n", w,
                  w == 1 ? " " : "s", (long long)batch, got / s, (long long)got, s);
    }
    if (!tmp.empty()) fs::remove_all(tmp);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_imagenet_loader: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
