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
#include "ebm/eval/bootstrap.h"
#include "ebm/experiments/trajectory.h"
#include "ebm/nets/trajectory_generator.h"
#include "ebm/nets/trajectory_nets.h"
#include "ebm/util/json.h"
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
  std::vector<std::pair<int64_t, int64_t>> ctrl_cols;     // (feature column, ctrl index)
  int decimation = 1;                                     // physics steps per frame
  double frame_dt = 0;
  // Futures can be re-simulated when their features hold controls.
  bool can_resimulate() const { return !ctrl_cols.empty(); }
};
Physics make_physics(const TrajConfig& c, const trajectory::FrameLayout& layout);

// Site positions [T, P, 3] for qpos frames [T, nq].
torch::Tensor site_paths(Physics& p, const torch::Tensor& qpos);
// Full qpos frames for predicted features: the last history frame's qpos with the predicted
// coordinates written in.
torch::Tensor to_qpos(const Physics& p, const torch::Tensor& pred, const torch::Tensor& base_qpos);

// The simulator's state at a recorded frame: qpos [nq], qvel [nv], ctrl [nu] (float64). A frame
// holds the state at the start of a physics step with the controls applied during it.
struct SimState {
  torch::Tensor qpos, qvel, ctrl;
};
// Re-simulation of futures `feats` ([T, D] each), on up to 2 threads (each with its own mjData):
// from `start`, every frame's controls held for `decimation` physics steps (start's own first,
// then those of future frames 1..T-1; controls without a feature column keep start's values) ->
// the qpos frames [T, nq] the simulation reaches, per future.
std::vector<torch::Tensor> resimulate_all(const Physics& p, const SimState& start,
                                          const std::vector<torch::Tensor>& feats);
// The Jacobian [3, D] of a site's position with respect to the features (qpos columns; 0
// elsewhere) at qpos [nq], and the site's position there [3].
std::pair<torch::Tensor, torch::Tensor> site_feature_jacobian(Physics& p, int site,
                                                              const torch::Tensor& qpos,
                                                              int64_t dim);

// The deepest contact penetration (m) of one qpos frame [nq] (MuJoCo's collision detection).
double frame_penetration(Physics& p, const double* qpos);

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

// method -> metric -> one value per evaluation unit (held-out state, goal), in unit order.
using UnitValues = std::map<std::string, std::map<std::string, std::vector<double>>>;

// Long-horizon curves: method -> metric -> per-frame sums and counts (the mean is sum / count).
struct Curves {
  std::map<std::string, std::map<std::string, std::vector<double>>> sum, count;
  void add(const std::string& method, const std::string& metric, size_t frame, double value);
  std::vector<double> mean(const std::string& method, const std::string& metric) const;
};

struct EvalResult {
  UnitValues per_state;   // the futures from each held-out state
  MethodMetrics metrics;  // their means
  Curves curves;          // long horizons (empty when eval.long_horizon is 0)
  UnitValues goals;       // goal-directed futures, one unit per goal (empty when off)
  std::vector<std::string> pictures;
  int64_t states = 0;
};

// What the methods are measured against at one held-out state.
struct StateTruth {
  torch::Tensor history;      // [1, H, D] features of the shared history
  torch::Tensor base_qpos;    // [nq] the last history frame
  SimState start;             // the simulator's state there (re-simulation starts from it)
  torch::Tensor start_sites;  // [P, 3] the tracked sites there
  torch::Tensor paths;        // [B, T, P, 3] every branch's site paths; branch 0 is the recording
  std::vector<torch::Tensor> qpos, features;  // per branch: [T, nq], [T, D]
  // The branches as far as they were recorded, up to eval.long_horizon frames: [B, T_long, P, 3].
  torch::Tensor long_paths;
};

// Futures from one state measured: site paths [k, T, P, 3], the raw features [k, T, D] predicted
// (undefined for the ground truth), the feasibility of each future and, when the features hold
// controls, the distance between each future's sites and where re-simulating its controls takes
// them (mean over sites per frame, [k, T]).
struct MethodFutures {
  torch::Tensor paths, predicted, resim_distance;
  std::vector<Feasibility> feasibility;
};
// Measures futures given as features [T, D] and their qpos frames [T, nq] from one state.
MethodFutures measure_futures(Physics& phys, const StateTruth& truth,
                              const std::vector<torch::Tensor>& features,
                              const std::vector<torch::Tensor>& qpos);

// K futures of `frames` frames (chained windows) of a method for raw histories [N, H, D] ->
// [N, K, frames, D]; ebm_experts is the EBM composed with its experts (and the goal, when set).
torch::Tensor predict(const std::string& method, Models& m, const TrajConfig& c,
                      const torch::Tensor& history, int64_t k, int64_t frames,
                      torch::Device device);

// Every method's futures (not the ground truth's) for all histories [S, H, D] at once, each
// method drawing from the same seed (ebm and ebm_experts get the same chain starts and noise;
// no method's numbers depend on how many random numbers another drew): method -> [S, k, T, D]
// (FC: k = 1). One batch per method amortises the sampler's steps over the states.
std::map<std::string, torch::Tensor> predict_all(const TrajConfig& c, Models& models,
                                                 const std::vector<std::string>& methods,
                                                 const torch::Tensor& histories, int64_t k,
                                                 int64_t frames, uint64_t seed,
                                                 torch::Device device);

// Samples every method from the held-out start states and measures it against their branches;
// writes paths.png (and frames.png when rendering works, long-horizon charts) into run_dir.
EvalResult evaluate(const TrajConfig& c, const std::string& run_dir, torch::Device device,
                    bool quiet);

// --------------------------------------------------------------------- trajectory_long.cc ---

// A method's long futures from one held-out state (raw features [k, T, D]), frame by frame:
// joint-limit violations, penetration, velocity inconsistency, distance to the nearest true
// branch (while branches last) and divergence (non-finite, or a joint beyond its range by more
// than the range's width) into `curves`; their means over the horizon (long_*) into `values`.
void long_horizon_state(Physics& phys, const std::string& method, const torch::Tensor& predicted,
                        const StateTruth& truth, Curves& curves,
                        std::map<std::string, std::vector<double>>& values);
// The long-horizon metrics (chart order) and what their charts' y axes show.
std::vector<std::pair<std::string, std::string>> long_horizon_metrics();
// One chart per long-horizon metric (methods as lines) in run_dir; the paths written.
std::vector<std::string> write_long_horizon_charts(const Curves& curves,
                                                   const std::string& run_dir);

// -------------------------------------------------------------------- trajectory_goals.cc ---

// A goal from one held-out state: eval.goal.site where a randomly chosen true branch has it at
// frame eval.goal.horizon; the EBM composed with its experts and the goal (ebm_goal), the same
// chains without the goal (ebm_experts), the MDN's best of eval.goal.mdn_samples by goal distance
// (mdn_best_of_n) and the FC prediction, each measured (goal distance, plausibility) into
// `values`.
void goal_state(const TrajConfig& c, Models& models, Physics& phys, const StateTruth& truth,
                uint64_t seed, torch::Device device, UnitValues& values);

// ------------------------------------------------------------------ trajectory_summary.cc ---

// A method against a baseline on the same units: paired differences (method - baseline) per
// metric (for diversity and movement, of the gaps to the ground truth's values: *_gap_to_truth)
// and a sentence for each.
struct Comparison {
  std::string method, baseline;
  std::map<std::string, eval::Interval> differences;
  std::vector<std::string> verdicts;
};
struct Summary {
  std::map<std::string, std::map<std::string, eval::Interval>> intervals;  // method -> metric
  std::vector<Comparison> comparisons;
};
Summary summarize(const UnitValues& values, const std::string& method,
                  const std::vector<std::string>& baselines, const eval::BootstrapOptions& o);
// {"intervals": {method: {metric: [lo, hi]}}, "paired_differences": {"a - b": {metric: {mean,
// lo, hi}}}, "verdicts": [...]}
util::Json summary_json(const Summary& s);

// ------------------------------------------------------------------- trajectory_report.cc ---

// One panel per method: every trajectory of the set ([K, T, P, 3]) in its own colour.
void write_paths_png(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& sets);
// What scripts/render_frames.py renders (MuJoCo's Python renderer, OSMesa): `rows` of qpos
// frames ([columns, nq] each) into a grid `png`, and, when `animation` is given (full qpos
// sequences [T, nq], one panel each, side by side), an animated `gif` of them at the frame rate.
struct RenderRequest {
  std::vector<std::pair<std::string, torch::Tensor>> rows;
  std::vector<std::string> columns;
  std::vector<std::pair<std::string, torch::Tensor>> animation;
  torch::Tensor lookat;  // [3], the camera's target
  double distance = 1;
  std::string png, gif;
};
// Returns false (after a warning) when rendering is not possible here.
bool render_frames(const TrajConfig& c, Physics& p, const std::string& dir,
                   const RenderRequest& request);
std::string metrics_table(const MethodMetrics& metrics);
std::string metrics_json(const EvalResult& r, const TrajConfig& c);
std::string report_html(const EvalResult& r, const TrajConfig& c, const std::string& table);

}  // namespace ebm::experiments::traj
