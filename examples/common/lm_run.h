// examples/common/lm_run.h: the AFT language model (nn::AFTLM) of the programs that model
// sequences of bytes or sub-pixels (enwik8, cifar10): its mixer from the command line, and the
// model of a run directory (examples/common/run_dir.h) for their eval / sample commands.
#pragma once

#include <memory>
#include <string>

#include "nn/aft_lm.h"

namespace aft::examples {

// The mixer of --variant (local | full | simple), --window, --bias (factorized | full) and
// --bias-dim; aft::Error naming the option for an unknown variant or bias.
nn::MixerConfig lm_mixer(const std::string& variant, int64_t window, const std::string& bias, int64_t bias_dim);

// The model configuration saved in <out>/checkpoint.safetensors. `program` names the program in
// the error when there is no checkpoint ("run `<program> train --out <out>` first").
nn::AFTLMConfig read_lm_config(const std::string& out, const std::string& program);
// The model of a run directory, on `device`, in eval mode.
std::shared_ptr<nn::AFTLM> load_lm(const std::string& out, Device device, const std::string& program);

}  // namespace aft::examples
