// examples/imagenet/loader.h: the class-folder data set and the prefetching batch loader.
//
// Layout (torchvision's ImageFolder, ImageNet's and Imagenette's distributions):
//   root/train/<class>/*.JPEG   root/val/<class>/*.JPEG
// Classes are the folder names sorted (byte order); label = position in that list. Files are
// those ending in .jpeg/.jpg/.jpe/.jfif (any case), sorted within each class. Readable names
// come from classes.txt or LOC_synset_mapping.txt in root or its parent, lines
// "<folder> <name>[, more names]" (the first name is kept); a class without one is its folder
// (Imagenette's ten WordNet ids, n01440764 "tench" ..., are named without a file).
//
// The loader is an endless stream of batches numbered by `step`: step g is batch g mod E of
// epoch g / E (E = batches per epoch). An epoch visits the images in a permutation drawn from
// (seed, epoch) (or in order, without shuffling), in batches of `batch` (the last one short
// unless drop_last). Image i of epoch e is transformed with the random stream (seed, e, i)
// (transforms.h). So batch g's content depends only on (data, config, g): never on the worker
// count or on timing, and a training run resumed at step g just seeks there.
//
// Workers (threads) take images one at a time in stream order and decode them into the
// batch's buffer; at most `prefetch` batches are in progress or ready ahead of the consumer,
// which bounds memory. next() hands out batches in order. A file that cannot be read or
// decoded is left out of its batch (so a batch may be short), reported once on `log` with
// its path and the reason, and listed by failures(); a batch can even be empty. Once every file
// of the data set has failed, next() throws aft::Error naming the split (no readable sample is
// left: a loop waiting for a non-empty batch would wait forever).
#pragma once

#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "transforms.h"

namespace aft::imagenet {

struct Dataset {
  std::string root, split;
  std::vector<std::string> classes;  // folder names, sorted
  std::vector<std::string> names;    // readable names, parallel to classes
  std::vector<std::string> paths;    // every image
  std::vector<int64_t> labels;       // parallel to paths
  int64_t ignored = 0;               // files without a JPEG extension
  int64_t size() const { return static_cast<int64_t>(paths.size()); }
  std::string description() const;   // "root/train: 4500 images, 10 classes"
};

// Scans root/split. With `classes` given (a trained model's), those are the labels: a class
// folder missing on disk just has no images, a folder not in the list is an error.
Dataset scan_image_folder(const std::string& root, const std::string& split,
                          const std::vector<std::string>* classes = nullptr);

// Readable names for the classes (see the top of this file).
std::vector<std::string> read_class_names(const std::string& root, const std::vector<std::string>& classes);

struct LoaderConfig {
  int64_t batch = 64;
  TransformConfig transform;
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 2;
  int prefetch = 4;          // batches decoded ahead of the consumer (>= 1)
  int64_t max_batches = 0;   // next() returns nothing from this step on; 0: endless
  std::FILE* log = stderr;   // where skipped files are reported; null: nowhere
};

struct Batch {
  Tensor images;                 // [n, S, S, 3] float32, n <= batch
  Tensor labels;                 // [n] int64
  std::vector<int64_t> indices;  // dataset indices of the n images
  int64_t step = 0, epoch = 0, number = 0;  // position in the stream and in its epoch
  int64_t skipped = 0;           // unreadable images left out of this batch
};

class Loader {
 public:
  // `data` must outlive the loader.
  Loader(const Dataset& data, LoaderConfig cfg);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const { return per_epoch_; }
  // The dataset indices of epoch e in visiting order.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // The step next() will return.
  int64_t position() const;
  // Drops what was decoded ahead and continues from `step`.
  void seek(int64_t step);
  // The batch at position(), waiting for it; nothing after max_batches. Rethrows an
  // unexpected worker failure (out of memory...) as aft::Error.
  std::optional<Batch> next();

  struct Failure {
    std::string path, reason;
  };
  std::vector<Failure> failures() const;  // every unreadable file met so far, once

 private:
  struct Slot;
  void worker();
  Slot* slot_for(int64_t step);  // under mu_
  bool claimable() const;        // under mu_

  const Dataset& data_;
  LoaderConfig cfg_;
  int64_t per_epoch_ = 0;
  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::map<int64_t, std::unique_ptr<Slot>> slots_;
  std::map<int64_t, std::vector<int64_t>> orders_;  // cached epoch orders
  int64_t next_ = 0, claim_ = 0;
  int in_flight_ = 0;
  bool stop_ = false, paused_ = false;
  std::string fatal_;
  std::vector<Failure> failures_;
  std::set<std::string> failed_paths_;
  std::vector<std::thread> threads_;
};

}  // namespace aft::imagenet
