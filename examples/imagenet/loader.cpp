// examples/imagenet/loader.cpp: scanning class folders, and the worker threads and bounded
// queue of the batch loader (see loader.h).
#include "loader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "../common/files.h"
#include "core/error.h"
#include "core/format.h"

namespace aft::imagenet {

namespace fs = std::filesystem;

namespace {

bool is_jpeg_name(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".jpeg" || e == ".jpg" || e == ".jpe" || e == ".jfif";
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

std::string Dataset::description() const {
  std::string s = fmt::format("{}: {} images, {} classes", (fs::path(root) / split).string(), paths.size(), classes.size());
  if (ignored > 0) s += fmt::format(" ({} files without a JPEG extension ignored)", ignored);
  return s;
}

Dataset scan_image_folder(const std::string& root, const std::string& split, const std::vector<std::string>* classes) {
  Dataset d;
  d.root = root;
  d.split = split;
  fs::path dir = fs::path(root) / split;
  std::error_code ec;
  AFT_CHECK(fs::is_directory(dir, ec), "{}: not a directory (expected {}/{}/<class>/*.JPEG)", dir.string(), root, split);
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) found.push_back(e.path().filename().string());
  AFT_CHECK(!ec, "{}: cannot list: {}", dir.string(), ec.message());
  std::sort(found.begin(), found.end());
  if (classes) {
    for (const auto& f : found)
      AFT_CHECK(std::find(classes->begin(), classes->end(), f) != classes->end(),
                "{}: class folder '{}' is not one of the model's {} classes", dir.string(), f, classes->size());
    d.classes = *classes;
  } else {
    AFT_CHECK(!found.empty(), "{}: no class folders (expected {}/{}/<class>/*.JPEG)", dir.string(), root, split);
    d.classes = found;
  }
  for (size_t label = 0; label < d.classes.size(); ++label) {
    fs::path cdir = dir / d.classes[label];
    if (!fs::is_directory(cdir, ec)) continue;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(cdir, ec)) {
      if (!e.is_regular_file()) continue;
      if (is_jpeg_name(e.path())) files.push_back(e.path().string());
      else ++d.ignored;
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      d.paths.push_back(std::move(f));
      d.labels.push_back(static_cast<int64_t>(label));
    }
  }
  AFT_CHECK(!d.paths.empty(), "{}: no JPEG files in its class folders", dir.string());
  d.names = read_class_names(root, d.classes);
  return d;
}

std::vector<std::string> read_class_names(const std::string& root, const std::vector<std::string>& classes) {
  // Imagenette's ten classes are named even without a mapping file.
  static const std::map<std::string, std::string> imagenette = {
      {"n01440764", "tench"},          {"n02102040", "English springer"}, {"n02979186", "cassette player"},
      {"n03000684", "chain saw"},      {"n03028079", "church"},           {"n03394916", "French horn"},
      {"n03417042", "garbage truck"},  {"n03425413", "gas pump"},         {"n03445777", "golf ball"},
      {"n03888257", "parachute"}};
  std::vector<std::string> names = classes;
  for (auto& n : names)
    if (auto it = imagenette.find(n); it != imagenette.end()) n = it->second;
  for (fs::path dir : {fs::path(root), fs::path(root).parent_path()}) {
    for (const char* file : {"classes.txt", "LOC_synset_mapping.txt"}) {
      std::ifstream in(dir / file);
      if (!in) continue;
      std::map<std::string, std::string> map;
      std::string line;
      while (std::getline(in, line)) {
        line = trim(line);
        size_t sp = line.find_first_of(" \t");
        if (sp == std::string::npos) continue;
        std::string name = trim(line.substr(sp + 1));
        name = trim(name.substr(0, name.find(',')));
        if (!name.empty()) map[line.substr(0, sp)] = name;
      }
      for (size_t i = 0; i < classes.size(); ++i)
        if (auto it = map.find(classes[i]); it != map.end()) names[i] = it->second;
      return names;
    }
  }
  return names;
}

// ---- the loader

struct Loader::Slot {
  int64_t step = 0, epoch = 0, number = 0;
  std::vector<int64_t> indices;
  Tensor images;  // [n, S, S, 3]
  std::vector<std::string> errors;  // per image; empty when it decoded
  size_t claimed = 0, done = 0;
};

Loader::Loader(const Dataset& data, LoaderConfig cfg) : data_(data), cfg_(std::move(cfg)) {
  const int64_t N = data_.size();
  AFT_CHECK(cfg_.batch >= 1 && cfg_.workers >= 1 && cfg_.prefetch >= 1 && cfg_.max_batches >= 0,
            "Loader: batch, workers and prefetch must be >= 1, got {}, {}, {}", cfg_.batch, cfg_.workers, cfg_.prefetch);
  AFT_CHECK(cfg_.transform.size >= 1, "Loader: image size must be >= 1, got {}", cfg_.transform.size);
  per_epoch_ = cfg_.drop_last ? N / cfg_.batch : (N + cfg_.batch - 1) / cfg_.batch;
  AFT_CHECK(per_epoch_ > 0, "Loader: {} images are fewer than one batch of {}", N, cfg_.batch);
  for (int i = 0; i < cfg_.workers; ++i) threads_.emplace_back([this] { worker(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(data_.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (cfg_.shuffle) {  // Fisher–Yates from the epoch's own stream
    ImageRng rng(mix64(cfg_.seed + 0x0DE7), static_cast<uint64_t>(epoch), 0);
    for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) std::swap(order[i], order[rng.randint(0, i + 1)]);
  }
  return order;
}

int64_t Loader::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_;
}

bool Loader::claimable() const {
  return !stop_ && !paused_ && fatal_.empty() && (cfg_.max_batches == 0 || claim_ < cfg_.max_batches) &&
         claim_ < next_ + cfg_.prefetch;
}

Loader::Slot* Loader::slot_for(int64_t step) {
  auto it = slots_.find(step);
  if (it != slots_.end()) return it->second.get();
  auto s = std::make_unique<Slot>();
  s->step = step;
  s->epoch = step / per_epoch_;
  s->number = step % per_epoch_;
  auto o = orders_.find(s->epoch);
  if (o == orders_.end()) {
    // Keep at most two epochs' orders: drop the one farthest from this epoch.
    while (orders_.size() >= 2) {
      auto far = std::max_element(orders_.begin(), orders_.end(), [&](const auto& a, const auto& b) {
        return std::abs(a.first - s->epoch) < std::abs(b.first - s->epoch);
      });
      orders_.erase(far);
    }
    o = orders_.emplace(s->epoch, epoch_order(s->epoch)).first;
  }
  const std::vector<int64_t>& order = o->second;
  int64_t begin = s->number * cfg_.batch, end = std::min<int64_t>(begin + cfg_.batch, static_cast<int64_t>(order.size()));
  s->indices.assign(order.begin() + begin, order.begin() + end);
  const int64_t S = cfg_.transform.size;
  s->images = empty({end - begin, S, S, 3}, kFloat32);
  s->errors.resize(s->indices.size());
  return slots_.emplace(step, std::move(s)).first->second.get();
}

void Loader::worker() {
  const int64_t S = cfg_.transform.size;
  for (;;) {
    Slot* s = nullptr;
    size_t i = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || claimable(); });
      if (stop_) return;
      try {
        s = slot_for(claim_);
      } catch (const std::exception& e) {
        fatal_ = e.what();
        ready_cv_.notify_all();
        continue;
      }
      i = s->claimed++;
      if (s->claimed == s->indices.size()) ++claim_;
      ++in_flight_;
    }
    std::string error;
    const int64_t index = s->indices[i];
    const std::string& path = data_.paths[static_cast<size_t>(index)];
    try {
      std::vector<uint8_t> bytes = files::read_file_bytes(path);
      float* out = s->images.data<float>() + static_cast<int64_t>(i) * S * S * 3;
      load_transformed(bytes.data(), bytes.size(), path, cfg_.transform, cfg_.seed, static_cast<uint64_t>(s->epoch),
                       static_cast<uint64_t>(index), out);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = path + ": unreadable";
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      s->errors[i] = std::move(error);
      ++s->done;
      --in_flight_;
    }
    ready_cv_.notify_all();
  }
}

void Loader::seek(int64_t step) {
  AFT_CHECK(step >= 0, "Loader::seek: step must be >= 0, got {}", step);
  std::unique_lock<std::mutex> lock(mu_);
  paused_ = true;
  ready_cv_.wait(lock, [&] { return in_flight_ == 0; });
  slots_.clear();
  next_ = claim_ = step;
  paused_ = false;
  work_cv_.notify_all();
}

std::optional<Batch> Loader::next() {
  std::unique_ptr<Slot> s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (cfg_.max_batches > 0 && next_ >= cfg_.max_batches) return std::nullopt;
    ready_cv_.wait(lock, [&] {
      if (!fatal_.empty()) return true;
      auto it = slots_.find(next_);
      return it != slots_.end() && it->second->done == it->second->indices.size();
    });
    AFT_CHECK(fatal_.empty(), "image loader: {}", fatal_);
    auto it = slots_.find(next_);
    s = std::move(it->second);
    slots_.erase(it);
    ++next_;
  }
  work_cv_.notify_all();

  Batch b;
  b.step = s->step;
  b.epoch = s->epoch;
  b.number = s->number;
  std::vector<int64_t> keep;
  for (size_t i = 0; i < s->indices.size(); ++i) {
    if (s->errors[i].empty()) {
      keep.push_back(static_cast<int64_t>(i));
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    const std::string& path = data_.paths[static_cast<size_t>(s->indices[i])];
    if (failed_paths_.insert(path).second) {
      failures_.push_back({path, s->errors[i]});
      if (cfg_.log) std::fprintf(cfg_.log, "skipped: %s\n", s->errors[i].c_str());
    }
  }
  {
    // With every file unreadable, no batch will ever hold an image: say so instead of handing
    // out empty batches forever (a training loop waiting for a non-empty one would hang).
    std::lock_guard<std::mutex> lock(mu_);
    AFT_CHECK(failed_paths_.size() < static_cast<size_t>(data_.size()),
              "{}: none of its {} images can be read (the first: {})", (fs::path(data_.root) / data_.split).string(),
              data_.size(), failures_.front().reason);
  }
  b.skipped = static_cast<int64_t>(s->indices.size() - keep.size());
  std::vector<int64_t> labels;
  for (int64_t i : keep) {
    b.indices.push_back(s->indices[static_cast<size_t>(i)]);
    labels.push_back(data_.labels[static_cast<size_t>(b.indices.back())]);
  }
  b.labels = from_vector<int64_t>(labels, {static_cast<int64_t>(labels.size())});
  if (b.skipped == 0) {
    b.images = s->images;
  } else {
    const int64_t S = cfg_.transform.size;
    b.images = empty({static_cast<int64_t>(keep.size()), S, S, 3}, kFloat32);
    for (size_t j = 0; j < keep.size(); ++j)
      std::copy_n(s->images.data<float>() + keep[j] * S * S * 3, S * S * 3, b.images.data<float>() + static_cast<int64_t>(j) * S * S * 3);
  }
  return b;
}

std::vector<Loader::Failure> Loader::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace aft::imagenet
