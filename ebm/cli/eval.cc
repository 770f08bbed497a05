// `ebm eval <experiment> --config F [--out DIR] [--set key=value ...]`: the image experiments
// (generation, completion, crossclass, ood, robustness, compose). Each trains what it needs
// (the EBM from its train_config, the baseline classifier) when it is not there yet.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "ebm/cli/commands.h"
#include "ebm/dist/launch.h"
#include "ebm/experiments/image_eval.h"

namespace ebm::cli {

void add_eval(CLI::App& app, Action& action) {
  auto o = std::make_shared<experiments::EvalRunOptions>();
  auto* eval = app.add_subcommand("eval",
                                  "Image experiments: generation, completion, crossclass, ood, "
                                  "robustness, compose");
  eval->require_subcommand(1);
  for (const auto& name : experiments::image_experiments()) {
    auto* cmd = eval->add_subcommand(
        name, "Run the " + name + " experiment (configs/eval/" + name + "_*.yaml)");
    cmd->add_option("--config,-c", o->config_path, "YAML config (see configs/README.md)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out,-o", o->out_dir, "run directory (default: runs/<config name>)");
    cmd->add_option("--set", o->overrides, "override a config key, e.g. --set ood.count=200")
        ->take_all();
    cmd->add_flag("--quiet,-q", o->quiet, "no progress display");
    cmd->add_flag("--check", o->check_only, "validate the config (unknown keys, ranges) and exit");
    cmd->callback([o, name, &action] {
      o->experiment = name;
      action = [o] {
        if (dist::is_secondary_rank()) return 0;  // runs on rank 0 alone under a launcher
        const auto s = experiments::run_image_eval(*o);
        fmt::print("{}\n", s.table);
        if (o->check_only) return 0;
        fmt::print("run directory: {}\nmetrics: {}\nreport: {}\n", s.run_dir, s.metrics_json,
                   s.report_html);
        return 0;
      };
    });
  }
}

}  // namespace ebm::cli
