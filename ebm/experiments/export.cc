#include "ebm/experiments/export.h"

#include <torch/torch.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>

#include "ebm/core/checkpoint.h"
#include "ebm/experiments/image_train.h"
#include "ebm/nets/torchscript.h"
#include "ebm/nets/trajectory_generator.h"
#include "ebm/util/files.h"

namespace ebm::experiments {

namespace {

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec);
}

// The kind of checkpoint: a trajectory generator names its format, an image EBM holds its config.
std::string checkpoint_kind(const std::string& path) {
  torch::serialize::InputArchive in;
  CheckpointManager::load(path, in);
  c10::IValue v;
  if (in.try_read("meta.format", v)) return "trajectory";
  if (in.try_read("meta.config", v)) return "image";
  throw std::runtime_error(path +
                           ": neither an image EBM checkpoint (`ebm train`: no meta.config) nor a "
                           "trajectory generator (models/generator.pt of `ebm traj train`)");
}

torch::jit::Module script_of(const std::string& checkpoint, const std::string& kind) {
  if (kind == "trajectory") {
    auto g = TrajectoryGenerator::load(checkpoint);
    g->net().eval();
    return script_trajectory_energy(g->net(), g->mean(), g->std_dev(), g->delta_std());
  }
  auto loaded = load_image_ebm(checkpoint, torch::kCPU);
  loaded.model->eval();
  return script_image_energy(*loaded.model);
}

}  // namespace

std::string default_script_path(const std::string& weights) {
  const std::string suffix = ".pt";
  if (weights.size() > suffix.size() &&
      weights.compare(weights.size() - suffix.size(), suffix.size(), suffix) == 0)
    return weights.substr(0, weights.size() - suffix.size()) + ".script.pt";
  return weights + ".script.pt";
}

ExportSummary export_model(const ExportOptions& o) {
  if (o.checkpoint.empty() || o.out.empty())
    throw std::invalid_argument("export: --checkpoint and --out are required");
  ExportSummary s;
  s.weights = o.out;
  s.script = o.script.empty() ? default_script_path(o.out) : o.script;
  for (const auto* out : {&s.weights, &s.script}) {
    if (same_file(*out, o.checkpoint))
      throw std::runtime_error(*out + ": is the checkpoint itself; choose another --out");
  }
  if (s.weights == s.script) throw std::runtime_error("export: --out and --script are the same");
  s.kind = checkpoint_kind(o.checkpoint);
  torch::jit::Module module = script_of(o.checkpoint, s.kind);
  const auto dict = script_state_dict(module);
  for (const auto& item : dict) {
    ++s.tensors;
    s.values += item.value().numel();
  }
  util::write_file_atomic(s.weights, pickle_state_dict(dict));
  std::ostringstream script;
  module.save(script);
  util::write_file_atomic(s.script, script.str());
  return s;
}

}  // namespace ebm::experiments
