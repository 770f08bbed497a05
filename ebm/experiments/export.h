// `ebm export`: a trained energy as files PyTorch reads without this toolkit: its weights as a
// state dict that `torch.load(F, weights_only=True)` returns, and a TorchScript module of the
// energy function that `torch.jit.load` runs (ebm/nets/torchscript.h).
#pragma once

#include <cstdint>
#include <string>

namespace ebm::experiments {

struct ExportOptions {
  // An image EBM checkpoint of `ebm train` (ckpt-*.pt, best.pt) or the trajectory generator of
  // `ebm traj train` (models/generator.pt).
  std::string checkpoint;
  // The state dict file; the TorchScript module goes to `script`, by default beside it with
  // `.pt` replaced by `.script.pt`.
  std::string out;
  std::string script;
};

struct ExportSummary {
  std::string kind;  // "image" | "trajectory"
  std::string weights, script;
  int64_t tensors = 0, values = 0;
};

// Throws std::runtime_error naming the file when the checkpoint is neither kind, or when an
// output would replace the checkpoint.
ExportSummary export_model(const ExportOptions& options);

// The default TorchScript path for a weights path: "m.pt" -> "m.script.pt".
std::string default_script_path(const std::string& weights);

}  // namespace ebm::experiments
