#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/core/options_config.h"
#include "ebm/experiments/recording.h"
#include "ebm/experiments/trajectory_internal.h"

namespace ebm::experiments {

TrajConfig traj_config(const ConfigSection& root) {
  TrajConfig c;
  c.name = root.get<std::string>("name", "trajectories");
  c.seed = static_cast<uint64_t>(root.get<int64_t>("seed", 0));
  c.device = root.get<std::string>("device", "auto");
  c.record = record_options(root);
  const auto w = root.section("windows");
  c.windows.history = w.get<int64_t>("history", c.windows.history);
  w.check(c.windows.history >= 1, "history", "an integer >= 1");
  c.windows.future = w.get<int64_t>("future", c.windows.future);
  w.check(c.windows.future >= 1, "future", "an integer >= 1");
  c.windows.stride = w.get<int64_t>("stride", c.windows.stride);
  w.check(c.windows.stride >= 1, "stride", "an integer >= 1");
  c.windows.features = w.get<std::vector<std::string>>("features", c.windows.features);
  w.check(!c.windows.features.empty(), "features", "a non-empty list");
  c.windows.val_fraction = w.get<double>("val_fraction", c.windows.val_fraction);
  w.check(c.windows.val_fraction > 0 && c.windows.val_fraction < 1, "val_fraction", "in (0, 1)");
  const auto m = root.section("model");
  c.channels = m.get<int64_t>("channels", c.channels);
  m.check(c.channels >= 1, "channels", "an integer >= 1");
  c.layers = m.get<int64_t>("layers", c.layers);
  m.check(c.layers >= 1 && c.layers <= 10, "layers", "an integer in 1..10");
  c.prior_weight = m.get<double>("prior_weight", c.prior_weight);
  m.check(c.prior_weight >= 0, "prior_weight", ">= 0");
  c.components = m.get<int64_t>("components", c.components);
  m.check(c.components >= 1, "components", "an integer >= 1");
  c.limit_weight = m.get<double>("limit_weight", c.limit_weight);
  m.check(c.limit_weight >= 0, "limit_weight", ">= 0");
  c.project_limits = m.get<bool>("project_limits", c.project_limits);
  c.kinematic_weight = m.get<double>("kinematic_weight", c.kinematic_weight);
  m.check(c.kinematic_weight >= 0, "kinematic_weight", ">= 0");
  c.basis = m.get<int64_t>("basis", c.basis);
  m.check(c.basis >= 0 && c.basis <= c.windows.future, "basis", "an integer in 0..windows.future");
  const auto t = root.section("trainer");
  c.ebm = trainer_options(t, root.section("langevin"), root.section("replay_buffer"));
  c.ebm_iterations = t.get<int64_t>("iterations", c.ebm_iterations);
  t.check(c.ebm_iterations >= 1, "iterations", "an integer >= 1");
  c.batch_size = t.get<int64_t>("batch_size", c.batch_size);
  t.check(c.batch_size >= 1, "batch_size", "an integer >= 1");
  c.log_every = t.get<int64_t>("log_every", c.log_every);
  t.check(c.log_every >= 1, "log_every", "an integer >= 1");
  const auto b = root.section("baselines");
  c.fc_iterations = b.get<int64_t>("fc_iterations", c.fc_iterations);
  b.check(c.fc_iterations >= 1, "fc_iterations", "an integer >= 1");
  c.mdn_iterations = b.get<int64_t>("mdn_iterations", c.mdn_iterations);
  b.check(c.mdn_iterations >= 1, "mdn_iterations", "an integer >= 1");
  c.baseline_lr = b.get<double>("lr", c.baseline_lr);
  b.check(c.baseline_lr > 0, "lr", "> 0");
  const auto e = root.section("eval");
  c.sites = e.require<std::vector<std::string>>("sites");
  e.check(!c.sites.empty(), "sites", "a non-empty list of site names");
  c.samples = e.get<int64_t>("samples", c.samples);
  e.check(c.samples >= 2, "samples", "an integer >= 2");
  c.horizon = e.get<int64_t>("horizon", c.horizon);
  e.check(c.horizon >= 1, "horizon", "an integer >= 1");
  c.error_frames = e.get<std::vector<int64_t>>("error_frames", c.error_frames);
  for (int64_t f : c.error_frames)
    e.check(f >= 1 && f <= c.horizon, "error_frames", "frames in 1..horizon");
  c.eval_langevin_steps = e.get<int64_t>("langevin_steps", c.eval_langevin_steps);
  e.check(c.eval_langevin_steps >= 1, "langevin_steps", "an integer >= 1");
  c.max_eval_states = e.get<int64_t>("max_states", c.max_eval_states);
  e.check(c.max_eval_states >= 1, "max_states", "an integer >= 1");
  c.bootstrap_resamples = e.get<int64_t>("bootstrap_resamples", c.bootstrap_resamples);
  e.check(c.bootstrap_resamples >= 100, "bootstrap_resamples", "an integer >= 100");
  c.long_horizon = e.get<int64_t>("long_horizon", c.long_horizon);
  e.check(c.long_horizon >= 0, "long_horizon", "an integer >= 0 (0: off)");
  c.long_samples = e.get<int64_t>("long_samples", c.long_samples);
  e.check(c.long_samples >= 1, "long_samples", "an integer >= 1");
  const auto g = e.section("goal");
  c.goal_weight = g.get<double>("weight", c.goal_weight);
  g.check(c.goal_weight >= 0, "weight", ">= 0 (0: off)");
  c.goal_site = g.get<std::string>("site", c.sites.front());
  c.goal_horizon = g.get<int64_t>("horizon", c.windows.future);
  g.check(c.goal_horizon >= 1 && c.goal_horizon <= c.horizon, "horizon",
          "frames in 1..eval.horizon");
  c.goal_mdn_samples = g.get<int64_t>("mdn_samples", c.goal_mdn_samples);
  g.check(c.goal_mdn_samples >= 1, "mdn_samples", "an integer >= 1");
  c.render = e.get<bool>("render", c.render);
  c.camera_azimuth = e.get<double>("camera_azimuth", c.camera_azimuth);
  c.camera_elevation = e.get<double>("camera_elevation", c.camera_elevation);
  return c;
}

namespace traj {

TrajectoryNetOptions net_options(const TrajConfig& c, int64_t dim) {
  return TrajectoryNetOptions(dim, c.windows.history, c.windows.future)
      .channels(c.channels)
      .layers(c.layers)
      .prior_weight(c.prior_weight)
      .components(c.components)
      .basis(c.basis);
}

std::string features_text(const TrajConfig& c) {
  std::string s;
  for (const auto& f : c.windows.features) s += (s.empty() ? "" : " ") + f;
  return s;
}

// The window layout and normalisation live in models/generator.pt (written with the EBM); the
// baselines are only valid with the same ones, so the config must agree with it.
void check_layout(const TrajectoryGenerator& g, const TrajConfig& c, const std::string& path) {
  const auto& meta = g.meta();
  if (meta.features != features_text(c)) {
    throw std::runtime_error(path + ": models were trained on features '" + meta.features +
                             "', the config asks for '" + features_text(c) + "'");
  }
  if (meta.history != c.windows.history || meta.future != c.windows.future) {
    throw std::runtime_error(path + ": models use windows of " + std::to_string(meta.history) +
                             " + " + std::to_string(meta.future) + " frames, the config " +
                             std::to_string(c.windows.history) + " + " +
                             std::to_string(c.windows.future));
  }
  if (meta.basis != c.basis) {
    throw std::runtime_error(path + ": models use model.basis = " + std::to_string(meta.basis) +
                             ", the config " + std::to_string(c.basis));
  }
}

}  // namespace traj
}  // namespace ebm::experiments
