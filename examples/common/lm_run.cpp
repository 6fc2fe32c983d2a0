// examples/common/lm_run.cpp: the AFT language model of a run directory (see lm_run.h).
#include "lm_run.h"

#include "core/format.h"
#include "run_dir.h"

namespace aft::examples {

nn::MixerConfig lm_mixer(const std::string& variant, int64_t window, const std::string& bias, int64_t bias_dim) {
  AFT_CHECK(variant == "local" || variant == "full" || variant == "simple",
            "--variant must be local, full or simple, got '{}'", variant);
  AFT_CHECK(bias == "factorized" || bias == "full", "--bias must be factorized or full, got '{}'", bias);
  nn::MixerConfig m;
  m.variant = variant;
  m.window = window;
  m.bias = {bias == "full" ? nn::BiasKind::Full : nn::BiasKind::Factorized, bias_dim};
  return m;
}

nn::AFTLMConfig read_lm_config(const std::string& out, const std::string& program) {
  return nn::AFTLMConfig::from_json(*read_run_config(out, program).find("model"));
}

std::shared_ptr<nn::AFTLM> load_lm(const std::string& out, Device device, const std::string& program) {
  auto model = std::make_shared<nn::AFTLM>(read_lm_config(out, program));
  load_run_weights(out, *model, device);
  return model;
}

}  // namespace aft::examples
