// A trained trajectory EBM packaged for sampling anywhere (the evaluation, the `ebm.generator`
// MuJoCo plugin): net, normalisation, window layout, the scene it was trained on, Langevin
// settings and a set of chain starts from its replay buffer, in one file (models/generator.pt).
#pragma once

#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>

#include "ebm/core/langevin.h"
#include "ebm/nets/trajectory_nets.h"

namespace ebm {

struct TrajectoryGeneratorMeta {
  std::string features;  // "qpos[0:24] qvel[0:24]"
  int64_t history = 0, future = 0, dim = 0, basis = 0, channels = 0, layers = 0;
  double prior_weight = 0;
  int64_t decimation = 1;  // physics steps per frame
  double timestep = 0;
  int64_t nq = 0, nv = 0;
  uint64_t model_hash = 0;  // of the scene (ebm::plugin::model_hash)
};

class TrajectoryGenerator {
 public:
  // Builds from a trained net (the trainer's), its sampler options and buffer states.
  TrajectoryGenerator(TrajectoryGeneratorMeta meta, std::shared_ptr<TrajectoryEnergyNetImpl> net,
                      LangevinOptions langevin, torch::Tensor mean, torch::Tensor std,
                      torch::Tensor delta_std, torch::Tensor chain_starts);
  // Loads models/generator.pt; throws std::runtime_error naming the file and what is wrong.
  static std::unique_ptr<TrajectoryGenerator> load(const std::string& path,
                                                   torch::Device device = torch::kCPU);
  void save(const std::string& path) const;

  // K futures of `frames` frames (chained windows) for raw histories [N, H, D] -> [N, K, frames, D]
  // raw features. steps <= 0: the trained number of Langevin steps.
  torch::Tensor sample(const torch::Tensor& history, int64_t k, int64_t frames, int64_t steps = 0,
                       std::optional<at::Generator> gen = std::nullopt);

  // Optional joint limits of the raw features ([D], -inf/+inf where none): sampling then uses the
  // product of experts E_net + weight * E_limits (StateLimitEnergy). weight 0 turns it off.
  void set_limits(torch::Tensor lower, torch::Tensor upper, double weight);
  double limit_weight() const { return limit_weight_; }
  void set_limit_weight(double weight) { limit_weight_ = weight; }
  bool has_limits() const { return lower_.defined(); }
  // With limits active (weight > 0), also clamp every sampled window's raw features into
  // [lower, upper] before it becomes the next window's history: the limits enforced, not only
  // encouraged. Stored in the file.
  void set_limit_projection(bool on) { project_limits_ = on; }
  bool limit_projection() const { return project_limits_; }

  // Optional position-velocity pairs (feature columns [P] each) and their residual scale [P]:
  // sampling then adds weight * E_kinematic (KinematicEnergy, with dt = decimation x timestep).
  void set_kinematics(torch::Tensor pos_cols, torch::Tensor vel_cols, torch::Tensor scale,
                      double weight);
  double kinematic_weight() const { return kinematic_weight_; }
  void set_kinematic_weight(double weight) { kinematic_weight_ = weight; }
  bool has_kinematics() const { return pos_cols_.defined(); }
  // Optional goal, not stored in the file (GoalEnergy): a point whose position is linear in the
  // raw features (jacobian [3, D] at raw state [D], where it was at `point`), pulled toward
  // `target` (metres) at every window's last frame with weight w (stable while w x step_size <
  // 2). Throws std::invalid_argument for a bad goal; clear_goal() removes it.
  void set_goal(torch::Tensor jacobian, torch::Tensor state, torch::Tensor point,
                torch::Tensor target, double weight);
  void clear_goal() { goal_expert_.reset(); }
  bool has_goal() const { return goal_expert_ != nullptr; }
  // The energy that sample() uses: the net, composed with the experts and the goal whose weights
  // are > 0.
  std::shared_ptr<EnergyModel> sampling_energy() const;

  const TrajectoryGeneratorMeta& meta() const { return meta_; }
  const LangevinOptions& langevin() const { return langevin_; }
  // The learned energy E(future | history) alone (no experts).
  TrajectoryEnergyNetImpl& net() const { return *net_; }
  // Normalisation of the windows ([D] each; datasets/trajectory/windows.h).
  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& std_dev() const { return std_; }
  const torch::Tensor& delta_std() const { return delta_std_; }
  // The window layout of the models' variables (dim, history, future, basis).
  TrajectoryNetOptions window_options() const {
    return TrajectoryNetOptions(meta_.dim, meta_.history, meta_.future).basis(meta_.basis);
  }

 private:
  TrajectoryGeneratorMeta meta_;
  std::shared_ptr<TrajectoryEnergyNetImpl> net_;
  LangevinOptions langevin_;
  torch::Tensor mean_, std_, delta_std_, starts_, lower_, upper_, pos_cols_, vel_cols_, kin_scale_;
  double limit_weight_ = 0, kinematic_weight_ = 0;
  bool project_limits_ = false;
  // Built once by set_limits / set_kinematics (the kinematic expert's stiffness costs an SVD).
  std::shared_ptr<StateLimitEnergyImpl> limit_expert_;
  std::shared_ptr<KinematicEnergyImpl> kinematic_expert_;
  std::shared_ptr<GoalEnergyImpl> goal_expert_;
  double goal_weight_ = 0;
  torch::Device device_ = torch::kCPU;
};

}  // namespace ebm
