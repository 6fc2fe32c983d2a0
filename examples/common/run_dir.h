// examples/common/run_dir.h: reading back a run directory written by an example program's
// `train` (nn::Trainer): the configuration saved in the checkpoint's "aft.config" metadata (the
// program's config_json, whose "model" entry is the model's configuration) and the weights.
#pragma once

#include <string>

#include "core/device.h"
#include "nn/run/json.h"
#include "nn/module.h"

namespace aft::examples {

// The "aft.config" JSON of <out>/checkpoint.safetensors, checked to have a "model" entry and to
// be `program`'s run (run_program below). `program` also names the program in the error when
// there is no checkpoint ("run `<program> train --out <out>` first").
json::Value read_run_config(const std::string& out, const std::string& program);

// Which program trained a run: its configuration's "program" entry, or for run directories
// written before that entry existed, told by the configuration's keys ("classes": imagenet,
// "augment": cifar10, else enwik8).
std::string run_program_of(const json::Value& config);

// When <out> holds a checkpoint, aft::Error unless `program` trained it (a cifar10 run directory
// given to enwik8 would otherwise load a model of the wrong kind). Nothing when there is none.
void check_run_program(const std::string& out, const std::string& program);

// Loads the weights of <out>/checkpoint.safetensors into `model` (built from the saved
// configuration), moves it to `device` and puts it in eval mode.
void load_run_weights(const std::string& out, nn::Module& model, Device device);

}  // namespace aft::examples
