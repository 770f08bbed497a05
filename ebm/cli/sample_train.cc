// `ebm train --config F [--out DIR] [--resume] [--set key=value ...]`: trains an image EBM.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "ebm/cli/commands.h"
#include "ebm/dist/launch.h"
#include "ebm/experiments/image_train.h"

namespace ebm::cli {

void add_train(CLI::App& app, Action& action) {
  auto o = std::make_shared<experiments::TrainRunOptions>();
  auto* cmd = app.add_subcommand("train", "Train an image energy model from a YAML config");
  cmd->add_option("--config,-c", o->config_path, "YAML config (see configs/README.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", o->out_dir, "run directory (default: runs/<config name>)");
  cmd->add_flag("--resume", o->resume, "continue from the newest checkpoint in the run directory");
  cmd->add_option("--set", o->overrides, "override a config key, e.g. --set trainer.lr=1e-4")
      ->take_all();
  cmd->add_flag("--quiet,-q", o->quiet, "no progress display");
  cmd->callback([o, &action] {
    action = [o] {
      auto s = experiments::train_image_ebm(*o);
      if (s.rank != 0) return 0;  // data-parallel: rank 0 reports
      fmt::print("trained {} steps in {:.1f} s (last loss {:.4f}, E+ {:.4f}, E- {:.4f})\n", s.steps,
                 s.seconds, s.last_loss, s.last_e_pos, s.last_e_neg);
      fmt::print("run directory: {}\ncheckpoint: {}\nsamples: {}\n", s.run_dir, s.last_checkpoint,
                 s.samples_png);
      return 0;
    };
  });
}

void add_sample(CLI::App& app, Action& action) {
  auto o = std::make_shared<experiments::SampleOptions>();
  auto* cmd = app.add_subcommand("sample", "Sample images from a checkpoint into a PNG grid");
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint (.pt) written by `ebm train`")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--n", o->n, "number of samples")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", o->steps, "Langevin steps (default: the training config's)");
  cmd->add_option("--label", o->label,
                  "class label for conditional models (default: cycle 0..K-1)");
  cmd->add_option("--init", o->init, "chain starts: noise (uniform) or buffer (the checkpoint's)")
      ->capture_default_str()
      ->check(CLI::IsMember({"noise", "buffer"}));
  cmd->add_option("--out,-o", o->out, "output PNG")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_flag("--verbose,-v", o->verbose, "print each Langevin step's energy and gradient norm");
  cmd->callback([o, &action] {
    action = [o] {
      if (dist::is_secondary_rank()) return 0;  // runs on rank 0 alone under a launcher
      auto x = experiments::sample_image_ebm(*o);
      fmt::print("wrote {} samples to {}\n", x.size(0), o->out);
      return 0;
    };
  });
}

}  // namespace ebm::cli
