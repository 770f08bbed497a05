// Nets over trajectory windows: the energy E(future | history) sampled by the core's one Langevin
// sampler, and the baselines the paper compares against (a feedforward regressor trained with
// MSE) plus a stochastic one (a mixture density network), so that diversity is compared fairly.
// Inputs are normalised (datasets/trajectory/windows.h): history [B, H, D] states, future
// [B, F, D] displacements from the last history frame.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <functional>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "ebm/core/energy.h"

namespace ebm {

struct TrajectoryNetOptions {
  TrajectoryNetOptions(int64_t dim, int64_t history, int64_t future)
      : dim_(dim), history_(history), future_(future) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, history);
  TORCH_ARG(int64_t, future);
  TORCH_ARG(int64_t, channels) = 128;  // temporal-conv channels / MLP width
  TORCH_ARG(int64_t,
            layers) = 3;  // dilated conv layers (dilation 1, 2, 4, ...) / MLP hidden layers
  // Weight of a quadratic prior 0.5 * w * |future|^2 added to the energy, which keeps it bounded
  // below far from the data (0: none).
  TORCH_ARG(double, prior_weight) = 0.01;
  // Mixture components of the MDN baseline.
  TORCH_ARG(int64_t, components) = 8;
  // Smooth latent: when > 0, every model works on `basis` coefficients per feature instead of the
  // F frames, the future being basis(F, basis) x coefficients. Any coefficients give a smooth
  // trajectory that starts where the history ends, so neither Langevin noise nor mixture noise
  // can make paths jagged or jump.
  TORCH_ARG(int64_t, basis) = 0;
  // Frames of the models' future variable: basis if set, else future.
 public:
  int64_t latent_frames() const { return basis_ > 0 ? basis_ : future_; }
};

// Orthonormal smooth basis [frames, size]: quarter-wave sines sin(pi (2k + 1) s / 2) of
// s = (t + 1) / frames, orthonormalised; all vanish at the last history frame (s = 0).
// Coefficients of a future f [B, frames, D] (displacements from that frame) are basis^T f.
torch::Tensor smooth_basis(int64_t frames, int64_t size);
// Future [B, F, D] -> the models' variable [B, latent, D], and back (identity without a basis).
torch::Tensor encode_future(const torch::Tensor& future, const TrajectoryNetOptions& o);
torch::Tensor decode_future(const torch::Tensor& latent, const TrajectoryNetOptions& o);

// Long futures from window models: from raw histories [N, H, D], next(history) gives the next
// `future` raw frames [N, F, D]; they are appended and the last H frames become the next history,
// until `frames` frames -> [N, frames, D].
torch::Tensor chain_windows(torch::Tensor history, int64_t frames, int64_t future,
                            const std::function<torch::Tensor(const torch::Tensor&)>& next);

// E(future | history): dilated temporal convolutions (swish) over the H + F frames, with two extra
// input channels marking future frames and time, then a linear read-out of all frames.
class TrajectoryEnergyNetImpl : public EnergyModel {
 public:
  explicit TrajectoryEnergyNetImpl(const TrajectoryNetOptions& options);
  // x: [B, latent, D] (the future, or its basis coefficients); condition: [B, H, D] (required).
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition) override;
  const TrajectoryNetOptions& options() const { return options_; }

 private:
  TrajectoryNetOptions options_;
  std::vector<torch::nn::Conv1d> convs_;
  torch::nn::Linear head_{nullptr};
  torch::Tensor time_channels_;  // [2, H + F]
  torch::Tensor basis_;          // [F, basis] or undefined
};
TORCH_MODULE(TrajectoryEnergyNet);

// A hand-written expert for composition with the learned energy (a product of experts,
// WeightedSumEnergy): 0.5 sum over future frames and features of the squared excess of the raw
// state beyond [lower, upper] (joint limits), in units of each feature's std. It knows the
// normalisation (mean, std of states; delta_std of displacements) to read raw states from the
// models' variables; features without limits carry -inf / +inf.
class StateLimitEnergyImpl : public EnergyModel {
 public:
  StateLimitEnergyImpl(const TrajectoryNetOptions& options, torch::Tensor mean, torch::Tensor std,
                       torch::Tensor delta_std, torch::Tensor lower, torch::Tensor upper);
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition) override;
  // The gradient in closed form (checked against autograd in tests/nets/).
  std::pair<torch::Tensor, torch::Tensor> energy_and_grad(const torch::Tensor& x,
                                                          const torch::Tensor& condition,
                                                          double scale = 1.0) override;
  bool closed_form_gradient() const override { return true; }

 private:
  TrajectoryNetOptions options_;
  torch::Tensor mean_, std_, delta_std_, lower_, upper_;
};
TORCH_MODULE(StateLimitEnergy);

// Position-velocity residuals of raw frames [B, T, D]: for each pair (pos_cols[i], vel_cols[i]) of
// a joint's position and velocity features, (q[t] - q[t-1]) / dt - (v[t] + v[t-1]) / 2 (the
// trapezoid rule; what the evaluation reports as velocity_inconsistency) -> [B, T - 1, pairs].
torch::Tensor kinematic_residual(const torch::Tensor& frames, const torch::Tensor& pos_cols,
                                 const torch::Tensor& vel_cols, double dt);

// A second hand-written expert, for models that sample positions and velocities as separate
// features: Q / lambda, Q = 0.5 sum over future frames and pairs of (residual / scale)^2 (the first
// residual taken from the last history frame), scale [pairs] the residuals' RMS on the training
// data. Q is quadratic in the models' variable x with a constant Hessian whose largest eigenvalue
// is lambda (computed once here; on the hand about 10^3, as 1/dt and the small scale make it
// stiff): dividing by it makes the expert's Hessian norm 1, so that a composition weight w is
// stable in explicit Langevin steps while w x step_size < 2.
class KinematicEnergyImpl : public EnergyModel {
 public:
  KinematicEnergyImpl(const TrajectoryNetOptions& options, torch::Tensor mean, torch::Tensor std,
                      torch::Tensor delta_std, torch::Tensor pos_cols, torch::Tensor vel_cols,
                      torch::Tensor scale, double dt);
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition) override;
  // The gradient in closed form (checked against autograd in tests/nets/).
  std::pair<torch::Tensor, torch::Tensor> energy_and_grad(const torch::Tensor& x,
                                                          const torch::Tensor& condition,
                                                          double scale = 1.0) override;
  bool closed_form_gradient() const override { return true; }
  // lambda: the largest eigenvalue of Q's Hessian in x.
  double stiffness() const { return stiffness_; }

 private:
  torch::Tensor residual_over_scale(const torch::Tensor& x, const torch::Tensor& cond) const;
  TrajectoryNetOptions options_;
  torch::Tensor mean_, std_, delta_std_, pos_cols_, vel_cols_, scale_;
  double dt_, stiffness_ = 1;
};
TORCH_MODULE(KinematicEnergy);

// A goal for composition with the learned energy: a point (a site of the scene) that should be at
// `target` (metres) at the last frame of a window. The point's position is linear in the raw state
// of that frame, p = point + jacobian (frame - state): the linearisation at a state where the
// point was at `point` (exact for coordinates that are themselves positions, as a free body's).
//   E = 0.5 |p - target|^2 / lambda,
// lambda the largest eigenvalue of E's Hessian in the models' variable x (metres^2 per unit of x),
// which makes a composition weight w stable in explicit Langevin steps while w x step_size < 2,
// as for KinematicEnergy. jacobian [3, D], state [D], point and target [3].
class GoalEnergyImpl : public EnergyModel {
 public:
  GoalEnergyImpl(const TrajectoryNetOptions& options, torch::Tensor mean, torch::Tensor std,
                 torch::Tensor delta_std, torch::Tensor jacobian, torch::Tensor state,
                 torch::Tensor point, torch::Tensor target);
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition) override;
  // The gradient in closed form (checked against autograd in tests/nets/).
  std::pair<torch::Tensor, torch::Tensor> energy_and_grad(const torch::Tensor& x,
                                                          const torch::Tensor& condition,
                                                          double scale = 1.0) override;
  bool closed_form_gradient() const override { return true; }
  // The linearised point at the last frame of each window: [B, 3].
  torch::Tensor position(const torch::Tensor& x, const torch::Tensor& condition) const;
  double stiffness() const { return stiffness_; }

 private:
  TrajectoryNetOptions options_;
  torch::Tensor mean_, std_, delta_std_, jacobian_, state_, point_, target_;
  double stiffness_ = 1;
};
TORCH_MODULE(GoalEnergy);

// The paper's feedforward baseline: an MLP from the flattened history to the future, trained
// with MSE. It predicts the conditional mean, hence a single future.
class FeedforwardPredictorImpl : public torch::nn::Module {
 public:
  explicit FeedforwardPredictorImpl(const TrajectoryNetOptions& options);
  torch::Tensor forward(const torch::Tensor& history);  // [B, latent, D]
  torch::Tensor loss(const torch::Tensor& history, const torch::Tensor& future);

 private:
  TrajectoryNetOptions options_;
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(FeedforwardPredictor);

// A mixture density network: K diagonal Gaussians over the whole future given the history.
class MixtureDensityNetImpl : public torch::nn::Module {
 public:
  explicit MixtureDensityNetImpl(const TrajectoryNetOptions& options);
  // Negative log-likelihood per window (mean over the batch).
  torch::Tensor loss(const torch::Tensor& history, const torch::Tensor& future);
  // n samples per history: [B, n, latent, D].
  torch::Tensor sample(const torch::Tensor& history, int64_t n,
                       std::optional<at::Generator> gen = std::nullopt);

 private:
  // logits [B, K], means [B, K, latent*D], log-std [B, K, latent*D]
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> params(const torch::Tensor& history);
  TrajectoryNetOptions options_;
  torch::nn::Sequential trunk_{nullptr};
  torch::nn::Linear logits_{nullptr}, means_{nullptr}, log_std_{nullptr};
};
TORCH_MODULE(MixtureDensityNet);

}  // namespace ebm
