// `ebm traj run|train|eval --config F [--out DIR] [--set key=value ...]`: trajectory models.
//   run    record (unless the run directory holds a recording), train, evaluate, report
//   train  train the EBM and the baselines on the run directory's recording
//   eval   evaluate trained models: metrics.json, paths.png, report.html
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "ebm/cli/commands.h"
#include "ebm/experiments/trajectory.h"

namespace ebm::cli {

void add_traj(CLI::App& app, Action& action) {
  auto o = std::make_shared<experiments::TrajRunOptions>();
  auto stage = std::make_shared<std::string>();
  auto* traj = app.add_subcommand("traj", "Trajectory EBMs and baselines: run, train, eval");
  traj->require_subcommand(1);
  for (const char* name : {"run", "train", "eval"}) {
    auto* cmd = traj->add_subcommand(
        name, std::string(name) == "run" ? "Record, train, evaluate and write the report"
              : std::string(name) == "train"
                  ? "Train the EBM and the baselines on the recording"
                  : "Evaluate trained models against the recorded branches");
    cmd->add_option("--config,-c", o->config_path, "YAML config (see configs/README.md)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out,-o", o->out_dir, "run directory (default: runs/<config name>)");
    cmd->add_option("--set", o->overrides,
                    "override a config key, e.g. --set trainer.iterations=100")
        ->take_all();
    cmd->add_flag("--quiet,-q", o->quiet, "no progress display");
    cmd->callback([o, stage, name, &action] {
      *stage = name;
      o->record = *stage == "run";
      o->train = *stage != "eval";
      o->eval = *stage != "train";
      action = [o] {
        const auto s = experiments::run_trajectory(*o);
        if (s.rank != 0) return 0;  // data-parallel: rank 0 reports
        if (!s.table.empty()) fmt::print("{}\n", s.table);
        fmt::print("run directory: {}\n", s.run_dir);
        if (!s.report_html.empty())
          fmt::print("metrics: {}\nreport: {}\n", s.metrics_json, s.report_html);
        return 0;
      };
    });
  }
}

}  // namespace ebm::cli
