// `ebm record --config F [--out DIR] [--set key=value ...]`: records branched rollouts of a MuJoCo
// scene (the Shadow Hand by default) through the `ebm.recorder` plugin.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <sstream>

#include "datasets/trajectory/record_file.h"
#include "ebm/cli/commands.h"
#include "ebm/core/config.h"
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

// Reads the `record` config (see configs/README.md, section "Recording configs").
rollout::RecordOptions record_options(const ConfigSection& root) {
  rollout::RecordOptions o;
  o.seed = static_cast<uint64_t>(root.get<int64_t>("seed", 0));
  const auto scene = root.section("scene");
  o.scene.name = scene.choice("name", "shadow_hand_block", {"shadow_hand_block", "particles", "mjcf"});
  if (!scene.is_null("path")) o.scene.path = scene.get<std::string>("path", "");
  const auto particles = scene.section("particles");
  o.scene.particles.count = static_cast<int>(particles.get<int64_t>("count", o.scene.particles.count));
  o.scene.particles.box = particles.get<double>("box", o.scene.particles.box);
  o.scene.particles.radius = particles.get<double>("radius", o.scene.particles.radius);
  o.scene.particles.max_force = particles.get<double>("max_force", o.scene.particles.max_force);
  const auto r = root.section("rollout");
  o.threads = static_cast<int>(r.get<int64_t>("threads", o.threads));
  r.check(o.threads >= 1, "threads", "an integer >= 1");
  o.start_states = static_cast<int>(r.get<int64_t>("start_states", o.start_states));
  r.check(o.start_states >= 1, "start_states", "an integer >= 1");
  o.branches = static_cast<int>(r.get<int64_t>("branches", o.branches));
  r.check(o.branches >= 1, "branches", "an integer >= 1");
  o.warmup_steps = r.get<int64_t>("warmup_steps", o.warmup_steps);
  r.check(o.warmup_steps >= 0, "warmup_steps", "an integer >= 0");
  o.episode_steps = r.get<int64_t>("episode_steps", o.episode_steps);
  r.check(o.episode_steps >= 1, "episode_steps", "an integer >= 1");
  const auto p = root.section("policy");
  p.choice("kind", "ou", {"ou"});
  o.policy.theta = p.get<double>("theta", o.policy.theta);
  p.check(o.policy.theta >= 0, "theta", "a number >= 0");
  o.policy.sigma = p.get<double>("sigma", o.policy.sigma);
  p.check(o.policy.sigma >= 0, "sigma", "a number >= 0");
  o.policy.action_repeat = static_cast<int>(p.get<int64_t>("action_repeat", o.policy.action_repeat));
  p.check(o.policy.action_repeat >= 1, "action_repeat", "an integer >= 1");
  const auto rec = root.section("recorder");
  const auto fields = rec.get<std::vector<std::string>>("fields", {"qpos", "qvel", "ctrl"});
  rec.check(!fields.empty(), "fields", "a non-empty list");
  o.fields.clear();
  for (const auto& f : fields) o.fields += (o.fields.empty() ? "" : " ") + f;
  o.decimation = static_cast<int>(rec.get<int64_t>("decimation", o.decimation));
  rec.check(o.decimation >= 1, "decimation", "an integer >= 1");
  o.flush = rec.choice("flush", "episode", {"episode", "close", "none"});
  return o;
}

int run_record(const RecordArgs& args) {
  auto config = Config::load_file(args.config_path, args.overrides);
  const auto root = config->root();
  const std::string name = root.get<std::string>("name", "record");
  rollout::RecordOptions o = record_options(root);
  config->check_all_used();
  o.out_dir = args.out_dir.empty() ? "runs/" + name + "/trajectories" : args.out_dir;
  const int64_t total = static_cast<int64_t>(o.start_states) * o.branches;
  fmt::print(stderr, "recording {}: {} start states x {} branches, {} steps each, {} threads -> {}\n",
             o.scene.name, o.start_states, o.branches, o.episode_steps, o.threads, o.out_dir);
  report::Progress progress("record", total);
  auto result = rollout::record_rollouts(o, [&](int64_t done, int64_t) {
    if (!args.quiet) progress.update(done);
  });
  progress.finish(fmt::format("{:.1f} episodes/s", result.episodes / std::max(result.seconds, 1e-9)));
  util::write_file_atomic(o.out_dir + "/config.yaml", config->dump());
  std::ostringstream summary;
  summary << "{\n  \"scene\": " << util::json_quote(o.scene.name)
          << ",\n  \"model_name\": " << util::json_quote(result.model_name)
          << ",\n  \"model_hash\": \"" << std::hex << result.model_hash << std::dec
          << "\",\n  \"nq\": " << result.nq << ", \"nv\": " << result.nv << ", \"nu\": " << result.nu
          << ",\n  \"start_states\": " << o.start_states << ",\n  \"branches\": " << o.branches
          << ",\n  \"episodes\": " << result.episodes << ",\n  \"physics_steps\": "
          << result.physics_steps << ",\n  \"seconds\": " << util::json_number(result.seconds)
          << ",\n  \"episodes_per_s\": " << util::json_number(result.episodes / result.seconds)
          << ",\n  \"steps_per_s\": " << util::json_number(result.physics_steps / result.seconds)
          << ",\n  \"threads\": " << o.threads << "\n}\n";
  util::write_file_atomic(o.out_dir + "/record.json", summary.str());
  fmt::print("recorded {} episodes ({} physics steps, {:.0f} steps/s) in {:.1f} s\n", result.episodes,
             result.physics_steps, result.physics_steps / result.seconds, result.seconds);
  fmt::print("trajectories: {}\n", o.out_dir);
  return 0;
}

}  // namespace

void add_record(CLI::App& app, Action& action) {
  auto a = std::make_shared<RecordArgs>();
  auto* cmd = app.add_subcommand("record", "Record branched MuJoCo rollouts with the ebm.recorder plugin");
  cmd->add_option("--config,-c", a->config_path, "YAML config (see configs/README.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", a->out_dir,
                  "output directory, must hold no trajectory files (default: runs/<name>/trajectories)");
  cmd->add_option("--set", a->overrides, "override a config key, e.g. --set rollout.threads=1")
      ->take_all();
  cmd->add_flag("--quiet,-q", a->quiet, "no progress display");
  cmd->callback([a, &action] { action = [a] { return run_record(*a); }; });
}

}  // namespace ebm::cli
