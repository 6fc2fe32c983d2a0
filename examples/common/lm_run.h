// examples/common/lm_run.h: loading the model of a run directory written by an example
// program's `train` (an nn::AFTLM whose configuration is in the checkpoint's "aft.config"
// metadata, under "model"), for its eval / sample commands.
#pragma once

#include <memory>
#include <string>

#include "nn/aft_lm.h"

namespace aft::examples {

// The model configuration saved in <out>/checkpoint.safetensors. `program` names the program in
// the error when there is no checkpoint ("run `<program> train --out <out>` first").
nn::AFTLMConfig read_lm_config(const std::string& out, const std::string& program);
// The model of a run directory, on `device`, in eval mode.
std::shared_ptr<nn::AFTLM> load_lm(const std::string& out, Device device, const std::string& program);

}  // namespace aft::examples
