#include "ebm/experiments/recording.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "datasets/trajectory/record_file.h"
#include "datasets/trajectory/windows.h"
#include "ebm/report/progress.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"

namespace ebm::experiments {

rollout::RecordOptions record_options(const ConfigSection& root) {
  rollout::RecordOptions o;
  o.seed = static_cast<uint64_t>(root.get<int64_t>("seed", 0));
  dist::recorded_world_size(root);  // a run's own record of its launch, not a setting
  const auto scene = root.section("scene");
  o.scene.name =
      scene.choice("name", "shadow_hand_block", {"shadow_hand_block", "particles", "mjcf"});
  if (!scene.is_null("path")) o.scene.path = scene.get<std::string>("path", "");
  const auto particles = scene.section("particles");
  o.scene.particles.count =
      static_cast<int>(particles.get<int64_t>("count", o.scene.particles.count));
  o.scene.particles.box = particles.get<double>("box", o.scene.particles.box);
  o.scene.particles.radius = particles.get<double>("radius", o.scene.particles.radius);
  o.scene.particles.max_force = particles.get<double>("max_force", o.scene.particles.max_force);
  const auto r = root.section("rollout");
  auto count = [&r](const char* key, int64_t fallback, int64_t min) {
    const int64_t v = r.get<int64_t>(key, fallback);
    r.check(v >= min && v <= 100000000, key, "an integer >= " + std::to_string(min));
    return v;
  };
  o.threads = static_cast<int>(count("threads", o.threads, 1));
  o.start_states = static_cast<int>(count("start_states", o.start_states, 1));
  o.branches = static_cast<int>(count("branches", o.branches, 1));
  o.warmup_steps = count("warmup_steps", o.warmup_steps, 0);
  o.episode_steps = count("episode_steps", o.episode_steps, 1);
  o.prefix_steps = count("prefix_steps", o.prefix_steps, 0);
  r.check(o.prefix_steps < o.episode_steps, "prefix_steps", "smaller than episode_steps");
  o.held_out_episode_steps = count("held_out_episode_steps", 0, 0);
  r.check(o.held_out_episode_steps == 0 || o.held_out_episode_steps > o.prefix_steps,
          "held_out_episode_steps", "0 or larger than prefix_steps");
  // The held-out states are the window datasets' validation split (one source of truth).
  if (o.held_out_episode_steps > 0) {
    o.held_out_fraction = root.section("windows").get<double>(
        "val_fraction", trajectory::WindowOptions().val_fraction);
  }
  const auto p = root.section("policy");
  p.choice("kind", "ou", {"ou"});
  o.policy.theta = p.get<double>("theta", o.policy.theta);
  p.check(o.policy.theta >= 0, "theta", "a number >= 0");
  o.policy.sigma = p.get<double>("sigma", o.policy.sigma);
  p.check(o.policy.sigma >= 0, "sigma", "a number >= 0");
  o.policy.action_repeat =
      static_cast<int>(p.get<int64_t>("action_repeat", o.policy.action_repeat));
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

namespace {

util::Json record_summary(const rollout::RecordOptions& o, const rollout::RecordResult& r) {
  const double seconds = std::max(r.seconds, 1e-9);
  return util::Json::object()
      .set("scene", o.scene.name)
      .set("model_name", r.model_name)
      .set("model_hash", trajectory::hex_hash(r.model_hash))
      .set("nq", r.nq)
      .set("nv", r.nv)
      .set("nu", r.nu)
      .set("start_states", o.start_states)
      .set("branches", o.branches)
      .set("episodes", r.episodes)
      .set("physics_steps", r.physics_steps)
      .set("seconds", r.seconds)
      .set("episodes_per_s", static_cast<double>(r.episodes) / seconds)
      .set("steps_per_s", static_cast<double>(r.physics_steps) / seconds)
      .set("threads", o.threads);
}

}  // namespace

namespace {

// The sums over all processes of what each recorded.
rollout::RecordResult total_over_ranks(rollout::RecordResult r, dist::DataParallel& dp) {
  const auto s = dp.sum({static_cast<double>(r.episodes), static_cast<double>(r.episodes_lost),
                         static_cast<double>(r.physics_steps)});
  r.episodes = static_cast<uint64_t>(std::llround(s[0]));
  r.episodes_lost = static_cast<uint64_t>(std::llround(s[1]));
  r.physics_steps = static_cast<uint64_t>(std::llround(s[2]));
  return r;  // seconds: this process's (rank 0's, in record.json)
}

}  // namespace

rollout::RecordResult record_trajectories(const rollout::RecordOptions& options,
                                          const std::string& config_yaml, bool quiet,
                                          dist::DataParallel* dp) {
  rollout::RecordOptions o = options;
  dist::DataParallel one(nullptr);
  if (!dp) dp = &one;
  o.shard_index = dp->rank();
  o.shard_count = dp->world_size();
  if (dp->active()) {
    // Every process checks before any writes: a recording is never added to.
    if (has_trajectories(o.out_dir))
      throw std::runtime_error(o.out_dir +
                               ": already holds trajectory files; choose a new output directory, "
                               "recordings are never mixed");
    dp->barrier();
  }
  quiet = quiet || !dp->is_main();
  if (dp->is_main())
    fmt::print(stderr,
               "recording {}: {} start states x {} branches, {} steps each{}, {} threads{} -> {}\n",
               o.scene.name, o.start_states, o.branches, o.episode_steps,
               o.held_out_episode_steps > 0
                   ? fmt::format(" ({} for held-out states)", o.held_out_episode_steps)
                   : "",
               o.threads, dp->active() ? fmt::format(" x {} processes", dp->world_size()) : "",
               o.out_dir);
  report::Progress progress("record", static_cast<int64_t>(o.start_states) * o.branches,
                            quiet ? nullptr : stderr);
  const auto mine = rollout::record_rollouts(o, [&](int64_t done, int64_t) {
    if (!quiet) progress.update(done * dp->world_size());
  });
  const auto result = dp->active() ? total_over_ranks(mine, *dp) : mine;
  if (!dp->is_main()) return result;
  const double seconds = std::max(result.seconds, 1e-9);
  progress.finish(fmt::format("{} episodes, {:.0f} steps/s", result.episodes,
                              static_cast<double>(result.physics_steps) / seconds));
  util::write_file_atomic(o.out_dir + "/config.yaml", config_yaml);
  util::write_file_atomic(
      o.out_dir + "/record.json",
      record_summary(o, result).set("processes", dp->world_size()).dump() + "\n");
  return result;
}

bool has_trajectories(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == trajectory::kFileSuffix) return true;
  }
  return false;
}

}  // namespace ebm::experiments
