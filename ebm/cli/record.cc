// `ebm record --config F [--out DIR] [--set key=value ...]`: records branched rollouts of a MuJoCo
// scene (the Shadow Hand by default) through the `ebm.recorder` plugin.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <sstream>

#include "datasets/trajectory/record_file.h"
#include "ebm/cli/commands.h"
#include "ebm/core/config.h"
#include "ebm/experiments/trajectory.h"
#include "ebm/report/progress.h"
#include "ebm/util/files.h"
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
  const int64_t total = static_cast<int64_t>(o.start_states) * o.branches;
  fmt::print(stderr,
             "recording {}: {} start states x {} branches, {} steps each, {} threads -> {}\n",
             o.scene.name, o.start_states, o.branches, o.episode_steps, o.threads, o.out_dir);
  report::Progress progress("record", total);
  auto result = rollout::record_rollouts(o, [&](int64_t done, int64_t) {
    if (!args.quiet) progress.update(done);
  });
  progress.finish(
      fmt::format("{:.1f} episodes/s", result.episodes / std::max(result.seconds, 1e-9)));
  util::write_file_atomic(o.out_dir + "/config.yaml", config->dump());
  std::ostringstream summary;
  summary << "{\n  \"scene\": " << util::json_quote(o.scene.name)
          << ",\n  \"model_name\": " << util::json_quote(result.model_name)
          << ",\n  \"model_hash\": \"" << std::hex << result.model_hash << std::dec
          << "\",\n  \"nq\": " << result.nq << ", \"nv\": " << result.nv
          << ", \"nu\": " << result.nu << ",\n  \"start_states\": " << o.start_states
          << ",\n  \"branches\": " << o.branches << ",\n  \"episodes\": " << result.episodes
          << ",\n  \"physics_steps\": " << result.physics_steps
          << ",\n  \"seconds\": " << util::json_number(result.seconds)
          << ",\n  \"episodes_per_s\": " << util::json_number(result.episodes / result.seconds)
          << ",\n  \"steps_per_s\": " << util::json_number(result.physics_steps / result.seconds)
          << ",\n  \"threads\": " << o.threads << "\n}\n";
  util::write_file_atomic(o.out_dir + "/record.json", summary.str());
  fmt::print("recorded {} episodes ({} physics steps, {:.0f} steps/s) in {:.1f} s\n",
             result.episodes, result.physics_steps, result.physics_steps / result.seconds,
             result.seconds);
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
