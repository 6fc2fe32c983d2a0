// nn/run/checkpoint.h: safetensors files and training checkpoints.
//
// The safetensors format (https://github.com/huggingface/safetensors): 8 bytes little-endian
// header length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets":
// [begin, end]}, ..., "__metadata__": {"key": "value"}}, then the raw little-endian tensor
// bytes. Python's safetensors and PyTorch can read what aft writes.
//
// A checkpoint is one safetensors file: the model's tensors under their own names (so a
// PyTorch user can load them directly), the optimizer state under "optimizer.", and in the
// metadata the step, the generator state, the model configuration and any extra fields.
// Writes are atomic: a temporary file in the same directory, flushed and fsync'ed, then
// renamed over the target, so a crash mid-write leaves the previous checkpoint intact.
// Reading checks everything (header length, JSON, dtypes, shapes, offsets against the file
// size) and reports a bad file as aft::Error naming the file, never a crash.
#pragma once

#include <map>
#include <string>

#include "core/random.h"
#include "nn/module.h"
#include "nn/optim/optim.h"

namespace aft::nn {

using Metadata = std::map<std::string, std::string>;

// Writes tensors (float32, float64, int64, bool; any device, copied to the host; views written
// densely) atomically.
void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {});

struct SafetensorsFile {
  StateDict tensors;  // in the header's order (the order they were saved in), on the CPU
  Metadata metadata;
};
// F32, F64, I64 and BOOL load as they are; F16 and BF16 load converted to float32 (exactly);
// any other dtype is an error.
SafetensorsFile load_safetensors(const std::string& path);

struct TrainingState {
  int64_t step = 0;
  Generator::State rng;      // the data/dropout generator's position
  std::string config;        // the model and run configuration (JSON text)
  Metadata extra;            // anything else the program wants back (e.g. best valid loss)
};

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const TrainingState& state);
// Loads into model (and optimizer when given) and returns the saved training state.
TrainingState load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer);

}  // namespace aft::nn
