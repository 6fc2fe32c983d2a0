// examples/common/run_dir.h: reading back a run directory written by an example program's
// `train` (nn::Trainer): the configuration saved in the checkpoint's "aft.config" metadata (the
// program's config_json, whose "model" entry is the model's configuration) and the weights.
#pragma once

#include <string>

#include "core/device.h"
#include "nn/run/json.h"
#include "nn/module.h"

namespace aft::examples {

// The "aft.config" JSON of <out>/checkpoint.safetensors, checked to have a "model" entry.
// `program` names the program in the error when there is no checkpoint ("run `<program> train
// --out <out>` first").
json::Value read_run_config(const std::string& out, const std::string& program);

// Loads the weights of <out>/checkpoint.safetensors into `model` (built from the saved
// configuration), moves it to `device` and puts it in eval mode.
void load_run_weights(const std::string& out, nn::Module& model, Device device);

}  // namespace aft::examples
