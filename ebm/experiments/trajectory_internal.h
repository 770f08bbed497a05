// Shared pieces of the trajectory experiment (not installed; included by
// ebm/experiments/trajectory*.cc only). The stages, one file each: configuration
// (trajectory_config.cc), training (trajectory_train.cc), MuJoCo physics checks
// (trajectory_physics.cc), evaluation (trajectory_eval.cc), report (trajectory_report.cc);
// trajectory.cc runs them.
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/trajectory/record_file.h"
#include "datasets/trajectory/windows.h"
#include "ebm/dist/data_parallel.h"
#include "ebm/experiments/trajectory.h"
#include "ebm/nets/trajectory_generator.h"
#include "ebm/nets/trajectory_nets.h"
#include "plugin/rollout/scene.h"

namespace ebm::experiments::traj {

// method -> metric -> value
using MethodMetrics = std::map<std::string, std::map<std::string, double>>;

// ------------------------------------------------------------------- trajectory_config.cc ---

TrajectoryNetOptions net_options(const TrajConfig& c, int64_t dim);
// The window features as one string ("qpos qvel"), as the generator file stores them.
std::string features_text(const TrajConfig& c);
// The window layout and normalisation live in models/generator.pt (written with the EBM); the
// baselines are only valid with the same ones, so the config must agree with it.
void check_layout(const TrajectoryGenerator& g, const TrajConfig& c, const std::string& path);

// -------------------------------------------------------------------- trajectory_train.cc ---

// Trains the EBM and the baselines on run_dir/trajectories into run_dir/models: ebm.pt (the
// trainer), generator.pt (the sampling package), fc.pt, mdn.pt; logs to run_dir/metrics.jsonl.
// With an active `dp` every process trains on batches from its own shard of the windows (window
// i belongs to rank i % world_size) with gradients averaged; rank 0 writes.
void train_models(const TrajConfig& c, const std::string& run_dir, torch::Device device, bool quiet,
                  dist::DataParallel& dp);

struct Models {
  trajectory::WindowStats stats;
  int64_t dim = 0;
  std::unique_ptr<TrajectoryGenerator> generator;
  FeedforwardPredictor fc{nullptr};
  MixtureDensityNet mdn{nullptr};
};
Models load_models(const TrajConfig& c, const std::string& run_dir, torch::Device device);

// ------------------------------------------------------------------ trajectory_physics.cc ---

// The hinge and slide joints whose position is a feature: its column, its velocity's column (-1
// when the velocity is not a feature) and the joint. Free and ball joints are left out (their
// qpos are not their velocities' integrals coordinate by coordinate).
struct JointColumns {
  int64_t pos_col = -1, vel_col = -1;
  int joint = -1;
};
std::vector<JointColumns> joint_columns(const mjModel* m, const TrajConfig& c,
                                        const trajectory::FrameLayout& layout);

// The scene of a config compiled once, with what the checks need of it.
struct Physics {
  rollout::ModelPtr model;
  rollout::DataPtr data;
  std::vector<int> sites;
  // Feature columns -> qpos / qvel addresses.
  std::vector<std::pair<int64_t, int64_t>> qpos_cols;     // (feature column, qpos index)
  std::vector<std::pair<int64_t, int64_t>> pos_vel_cols;  // (position, velocity) columns of a joint
  double frame_dt = 0;
};
Physics make_physics(const TrajConfig& c, const trajectory::FrameLayout& layout);

// Site positions [T, P, 3] for qpos frames [T, nq].
torch::Tensor site_paths(Physics& p, const torch::Tensor& qpos);
// Full qpos frames for predicted features: the last history frame's qpos with the predicted
// coordinates written in.
torch::Tensor to_qpos(const Physics& p, const torch::Tensor& pred, const torch::Tensor& base_qpos);

struct Feasibility {
  double limit_violation_rate = 0, limit_excess = 0, penetration = 0, velocity_inconsistency = 0;
  bool has_velocity = false;
};
// Joint limits, contact penetration and position-velocity consistency of one future: qpos frames
// [T, nq] and its features [T, D].
Feasibility feasibility(Physics& p, const torch::Tensor& qpos, const torch::Tensor& feats);
// The mean over futures (has_velocity from the last).
Feasibility mean_feasibility(const std::vector<Feasibility>& all);

// --------------------------------------------------------------------- trajectory_eval.cc ---

struct EvalResult {
  MethodMetrics metrics;
  std::vector<std::string> pictures;
  int64_t states = 0;
};
// Samples every method from the held-out start states and measures it against their branches;
// writes paths.png (and frames.png when rendering works) into run_dir.
EvalResult evaluate(const TrajConfig& c, const std::string& run_dir, torch::Device device,
                    bool quiet);

// ------------------------------------------------------------------- trajectory_report.cc ---

// One panel per method: every trajectory of the set ([K, T, P, 3]) in its own colour.
void write_paths_png(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& sets);
// Rows of qpos frames rendered by scripts/render_frames.py (MuJoCo's Python renderer, OSMesa)
// into `png`. Returns false (after a warning) when rendering is not possible here.
bool render_frames(const TrajConfig& c, Physics& p, const std::string& dir, const std::string& png,
                   const std::vector<std::pair<std::string, torch::Tensor>>& rows,
                   const std::vector<std::string>& columns, const torch::Tensor& lookat,
                   double distance);
std::string metrics_table(const MethodMetrics& metrics);
std::string metrics_json(const EvalResult& r, const TrajConfig& c);
std::string report_html(const EvalResult& r, const TrajConfig& c, const std::string& table);

}  // namespace ebm::experiments::traj
