// Trajectory experiments: record branched rollouts, train the trajectory EBM (the core's trainer,
// sampler and replay buffer) and the baselines (feedforward MSE, mixture density network) on
// windows, and evaluate all of them against the true distribution of futures (the recorded
// branches), with metrics, pictures and an HTML report. Used by `ebm traj` and the main job.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "datasets/trajectory/windows.h"
#include "ebm/core/config.h"
#include "ebm/core/trainer.h"
#include "ebm/nets/trajectory_generator.h"
#include "ebm/nets/trajectory_nets.h"
#include "plugin/rollout/rollout.h"

namespace ebm::experiments {

struct TrajConfig {
  std::string name;
  uint64_t seed = 0;
  std::string device = "auto";
  rollout::RecordOptions record;
  trajectory::WindowOptions windows;
  // Model and baselines.
  int64_t channels = 128, layers = 3, components = 8, basis = 0;
  double prior_weight = 0.01;
  // Weights of the hand-written experts composed with the learned energy when sampling (0: off):
  // joint limits and position-velocity consistency. With either on, the composition is
  // evaluated as the extra method `ebm_experts`; the ebm.generator plugin samples it.
  double limit_weight = 0, kinematic_weight = 0;
  // With the limit expert on, also clamp sampled features into their limits (see
  // TrajectoryGenerator::set_limit_projection).
  bool project_limits = false;
  TrainerOptions ebm;
  int64_t ebm_iterations = 2000, batch_size = 64;
  int64_t fc_iterations = 2000, mdn_iterations = 2000;
  double baseline_lr = 1e-3;
  // Evaluation.
  std::vector<std::string> sites;  // tracked points (fingertips, particles)
  int64_t samples = 8;             // K
  int64_t horizon = 80;            // future frames evaluated (chained windows)
  std::vector<int64_t> error_frames = {20, 40, 60, 80};
  int64_t eval_langevin_steps = 100;
  int64_t max_eval_states = 16;
  // Intervals: percentile bootstrap over held-out states (and goals).
  int64_t bootstrap_resamples = 2000;
  // Long horizons (0: off): every method's futures chained to long_horizon frames from each
  // held-out state, long_samples of them, measured frame by frame.
  int64_t long_horizon = 0, long_samples = 4;
  // Goal-directed futures (goal_weight 0: off): a goal for goal_site at frame goal_horizon, taken
  // from one true branch of each held-out state; the EBM composed with it against the MDN's best
  // of goal_mdn_samples and the FC prediction.
  std::string goal_site;
  int64_t goal_horizon = 20, goal_mdn_samples = 32;
  double goal_weight = 0;
  // Rendered MuJoCo frames (MuJoCo's Python renderer, OSMesa) of the first held-out state.
  bool render = true;
  double camera_azimuth = 90, camera_elevation = -45;
  int64_t log_every = 50;
};

// Joint-limit check of qpos frames [T, nq] on the limited hinge and slide joints of a model:
// the share of (frame, joint) pairs outside the range and the mean excess of those (rad or m).
struct LimitViolations {
  double rate = 0;
  double mean_excess = 0;
};
LimitViolations joint_limit_violations(const mjModel* m, const torch::Tensor& qpos);

// Reads and validates a trajectory config (keys in configs/README.md).
TrajConfig traj_config(const ConfigSection& root);

// The window normalisation a trained generator stores (models/generator.pt), to normalise
// windows for its net or the baselines.
trajectory::WindowStats generator_stats(const TrajectoryGenerator& generator);

struct TrajRunOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string out_dir;  // empty: runs/<name>
  bool record = true, train = true, eval = true;
  bool quiet = false;
};

struct TrajRunSummary {
  std::string run_dir;
  std::string metrics_json;
  std::string report_html;
  std::string table;  // the metrics table as text
  // method -> metric -> value
  std::map<std::string, std::map<std::string, double>> metrics;
  int rank = 0;  // this process under a launcher (only rank 0 evaluates and reports)
};

// Runs the stages asked for into the run directory: trajectories/ (record), models/ (train),
// metrics.json, *.png and report.html (eval). A stage whose inputs are missing is an error
// naming what is missing; recording into a directory that already holds trajectories is skipped.
// Under a launcher (torchrun: WORLD_SIZE > 1) the processes record their shards of the start
// states and train data-parallel; evaluation and the report run on rank 0 alone.
TrajRunSummary run_trajectory(const TrajRunOptions& options);

}  // namespace ebm::experiments
