// examples/common/run_dir.cpp: reading back a run directory (see run_dir.h).
#include "run_dir.h"

#include <filesystem>

#include "core/format.h"
#include "nn/run/checkpoint.h"
#include "nn/run/metrics.h"

namespace aft::examples {

json::Value read_run_config(const std::string& out, const std::string& program) {
  nn::RunPaths paths(out);
  AFT_CHECK(std::filesystem::exists(paths.checkpoint), "{}: no checkpoint here (run `{} train --out {}` first)", out,
            program, out);
  nn::SafetensorsFile f = nn::load_safetensors(paths.checkpoint);
  auto it = f.metadata.find("aft.config");
  AFT_CHECK(it != f.metadata.end(), "{}: the checkpoint has no configuration", paths.checkpoint);
  json::Value cfg = json::parse(it->second, paths.checkpoint);
  AFT_CHECK(cfg.find("model") != nullptr, "{}: the configuration has no \"model\" entry", paths.checkpoint);
  return cfg;
}

void load_run_weights(const std::string& out, nn::Module& model, Device device) {
  nn::load_checkpoint(nn::RunPaths(out).checkpoint, model, nullptr);
  model.to(device);
  model.eval();
}

}  // namespace aft::examples
