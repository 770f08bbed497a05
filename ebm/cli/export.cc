// `ebm export --checkpoint C --out F [--script S]`: a trained energy as PyTorch files.
#include "ebm/experiments/export.h"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "ebm/cli/commands.h"

namespace ebm::cli {

void add_export(CLI::App& app, Action& action) {
  auto o = std::make_shared<experiments::ExportOptions>();
  auto* cmd = app.add_subcommand(
      "export",
      "Write a trained energy for PyTorch: a state dict (torch.load(F, weights_only=True)) and a "
      "TorchScript module of the energy (torch.jit.load)");
  cmd->add_option("--checkpoint,-c", o->checkpoint,
                  "image EBM checkpoint of `ebm train`, or models/generator.pt of `ebm traj "
                  "train`")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", o->out, "state dict file to write, e.g. energy.pt")->required();
  cmd->add_option("--script", o->script,
                  "TorchScript file to write (default: --out with .pt replaced by .script.pt)");
  cmd->callback([o, &action] {
    action = [o] {
      const auto s = experiments::export_model(*o);
      fmt::print("{} energy: {} tensors, {} values\nstate dict: {}\nTorchScript: {}\n", s.kind,
                 s.tensors, s.values, s.weights, s.script);
      return 0;
    };
  });
}

}  // namespace ebm::cli
