// `ebm record --config F [--out DIR] [--set key=value ...]`: records branched rollouts of a MuJoCo
// scene (the Shadow Hand by default) through the `ebm.recorder` plugin.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ebm/cli/commands.h"
#include "ebm/core/config.h"
#include "ebm/dist/data_parallel.h"
#include "ebm/experiments/recording.h"
#include "plugin/rollout/rollout.h"

namespace ebm::cli {

namespace {

struct RecordArgs {
  std::string config_path;
  std::string out_dir;
  std::vector<std::string> overrides;
  bool quiet = false;
};

int run_record(const RecordArgs& args) {
  auto config = Config::load_file(args.config_path, args.overrides);
  const auto root = config->root();
  const std::string name = root.get<std::string>("name", "record");
  rollout::RecordOptions o = experiments::record_options(root);
  config->check_all_used();
  o.out_dir = args.out_dir.empty() ? "runs/" + name + "/trajectories" : args.out_dir;
  dist::DataParallel dp(dist::join_from_environment(torch::kCPU));
  const auto result = experiments::record_trajectories(o, config->dump(), args.quiet, &dp);
  if (!dp.is_main()) return 0;
  fmt::print("recorded {} episodes ({} physics steps, {:.0f} steps/s) in {:.1f} s\n",
             result.episodes, result.physics_steps,
             result.physics_steps / std::max(result.seconds, 1e-9), result.seconds);
  fmt::print("trajectories: {}\n", o.out_dir);
  return 0;
}

}  // namespace

void add_record(CLI::App& app, Action& action) {
  auto a = std::make_shared<RecordArgs>();
  auto* cmd =
      app.add_subcommand("record", "Record branched MuJoCo rollouts with the ebm.recorder plugin");
  cmd->add_option("--config,-c", a->config_path, "YAML config (see configs/README.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option(
      "--out,-o", a->out_dir,
      "output directory, must hold no trajectory files (default: runs/<name>/trajectories)");
  cmd->add_option("--set", a->overrides, "override a config key, e.g. --set rollout.threads=1")
      ->take_all();
  cmd->add_flag("--quiet,-q", a->quiet, "no progress display");
  cmd->callback([a, &action] { action = [a] { return run_record(*a); }; });
}

}  // namespace ebm::cli
