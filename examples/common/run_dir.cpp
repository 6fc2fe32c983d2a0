// examples/common/run_dir.cpp: reading back a run directory (see run_dir.h).
#include "run_dir.h"

#include <filesystem>

#include "core/format.h"
#include "nn/run/checkpoint.h"
#include "nn/run/metrics.h"

namespace aft::examples {

namespace {

// The checkpoint's configuration, checked to be a JSON object that names `program`.
json::Value checked_config(const std::string& checkpoint, const std::string& program) {
  nn::SafetensorsFile f = nn::load_safetensors(checkpoint);
  auto it = f.metadata.find("aft.config");
  AFT_CHECK(it != f.metadata.end(), "{}: the checkpoint has no configuration", checkpoint);
  json::Value cfg = json::parse(it->second, checkpoint);
  AFT_CHECK(cfg.is_object(), "{}: the configuration is not a JSON object", checkpoint);
  const std::string owner = run_program_of(cfg);
  AFT_CHECK(owner == program, "{}: this is a run of `{}`, not of `{}` (choose the run directory with --out)",
            checkpoint, owner, program);
  return cfg;
}

}  // namespace

std::string run_program_of(const json::Value& config) {
  if (const json::Value* p = config.find("program"); p && p->is_string()) return p->text;
  if (config.find("classes")) return "imagenet";
  if (config.find("augment")) return "cifar10";
  return "enwik8";
}

void check_run_program(const std::string& out, const std::string& program) {
  nn::RunPaths paths(out);
  std::error_code ec;
  if (std::filesystem::exists(paths.checkpoint, ec)) checked_config(paths.checkpoint, program);
}

json::Value read_run_config(const std::string& out, const std::string& program) {
  nn::RunPaths paths(out);
  AFT_CHECK(std::filesystem::exists(paths.checkpoint), "{}: no checkpoint here (run `{} train --out {}` first)", out,
            program, out);
  json::Value cfg = checked_config(paths.checkpoint, program);
  AFT_CHECK(cfg.find("model") != nullptr, "{}: the configuration has no \"model\" entry", paths.checkpoint);
  return cfg;
}

void load_run_weights(const std::string& out, nn::Module& model, Device device) {
  nn::load_checkpoint(nn::RunPaths(out).checkpoint, model, nullptr);
  model.to(device);
  model.eval();
}

}  // namespace aft::examples
