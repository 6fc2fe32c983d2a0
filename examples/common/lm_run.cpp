// examples/common/lm_run.cpp: the model of a run directory (see lm_run.h).
#include "lm_run.h"

#include <filesystem>

#include "core/format.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/metrics.h"

namespace aft::examples {

nn::AFTLMConfig read_lm_config(const std::string& out, const std::string& program) {
  nn::RunPaths paths(out);
  AFT_CHECK(std::filesystem::exists(paths.checkpoint), "{}: no checkpoint here (run `{} train --out {}` first)", out,
            program, out);
  nn::SafetensorsFile f = nn::load_safetensors(paths.checkpoint);
  auto it = f.metadata.find("aft.config");
  AFT_CHECK(it != f.metadata.end(), "{}: the checkpoint has no configuration", paths.checkpoint);
  json::Value cfg = json::parse(it->second, paths.checkpoint);
  const json::Value* model = cfg.find("model");
  AFT_CHECK(model != nullptr, "{}: the configuration has no \"model\" entry", paths.checkpoint);
  return nn::AFTLMConfig::from_json(*model);
}

std::shared_ptr<nn::AFTLM> load_lm(const std::string& out, Device device, const std::string& program) {
  auto model = std::make_shared<nn::AFTLM>(read_lm_config(out, program));
  nn::load_checkpoint(nn::RunPaths(out).checkpoint, *model, nullptr);
  model->to(device);
  model->eval();
  return model;
}

}  // namespace aft::examples
