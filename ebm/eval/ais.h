// Annealed importance sampling (Neal 2001) of an energy model's log partition function
//   log Z = log integral over the box [low, high]^D of exp(-E(x)) dx,
// and with it log-likelihoods log p(x) = -E(x) - log Z. Chains start uniform on the box (log Z_0 =
// D log(high - low)) and move through the energies beta_k E, beta_0 = 0 < ... < beta_K = 1
// (beta_k = (k / K)^power), each by Metropolis-adjusted Langevin steps (MALA; a proposal outside
// the box is rejected, so every transition leaves its tempered density on the box invariant). Each
// chain's log weight sums -(beta_k - beta_{k-1}) E(x_{k-1}); log Z = log Z_0 + log mean exp(log w).
// The estimate of Z is unbiased; that of log Z is low in expectation (Jensen), so log-likelihoods
// from it are high in expectation, the more so the fewer the temperatures.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/types.h>

#include <vector>

#include "ebm/core/energy.h"

namespace ebm::eval {

struct AisOptions {
  TORCH_ARG(int64_t, chains) = 100;
  TORCH_ARG(int64_t, temperatures) = 1000;  // K
  TORCH_ARG(double, power) = 4.0;           // beta_k = (k / K)^power
  TORCH_ARG(int64_t, mala_steps) = 1;       // transitions per temperature
  TORCH_ARG(double, step_size) = 1e-3;      // MALA step s: x' = x - s beta grad E + sqrt(2 s) xi
  // Move the step size after each transition toward `target_acceptance` (x exp(acc - target));
  // off: every transition uses step_size.
  TORCH_ARG(bool, adapt_step) = true;
  TORCH_ARG(double, target_acceptance) = 0.6;
  TORCH_ARG(double, low) = 0.0;
  TORCH_ARG(double, high) = 1.0;
  TORCH_ARG(int64_t, batch) = 0;  // chains per forward (0: all at once)

 public:  // TORCH_ARG leaves the struct in a private section
  // Throws OptionError ("ais.<key> must be ...").
  void validate() const;
};

struct AisResult {
  double log_z = 0;
  // Standard error of log Z over the chains (delta method: std of the weights / (sqrt(n) mean)).
  double std_error = 0;
  double log_z_base = 0;  // D log(high - low)
  double acceptance = 0;  // mean MALA acceptance rate over all transitions
  double final_step_size = 0;
  int64_t chains = 0;
  // Effective sample size of the final weights, (sum w)^2 / sum w^2: far below `chains` says the
  // estimate rests on a few chains.
  double effective_chains = 0;
};

// log Z of exp(-E(x | condition)) over the box, for samples of shape `sample_shape` (one condition
// row per chain, or undefined). The model is used as it is (call eval() first); `device` is where
// the chains live.
AisResult ais_log_partition(EnergyModel& model, const std::vector<int64_t>& sample_shape,
                            const torch::Tensor& condition, const AisOptions& options,
                            at::Generator& generator, torch::Device device = torch::kCPU);

}  // namespace ebm::eval
