// The two training improvements of "Improved Contrastive Training of Energy-Based Models" (Du, Li,
// Tenenbaum and Mordatch, 2021) that the trainer offers as options (trainer.kl_weight,
// trainer.augment_prob): the KL term and data augmentation as transitions of the chains.
#pragma once

#include <torch/types.h>

#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"

namespace ebm {

// The KL term of the sampler's distribution q against the model:
//   mean_i E_frozen(x'_i) - entropy_weight * mean_i log d_i,
// x' = one more noise-free Langevin step (step size and clamp of `langevin`) from the chains'
// ends `x` [N, ...]; d_i the distance from x'_i to its nearest other sample of the batch (a
// nearest-neighbour entropy estimate of q, up to constants). The energy that scores x' is held
// fixed: the term's gradient reaches the model's parameters only through x' (second order, through
// the step), which trains the energy so that its sampler moves towards low energy and spreads out.
// The value is the same as with the parameters free.
torch::Tensor icd_kl_term(EnergyModel& model, const torch::Tensor& x,
                          const torch::Tensor& condition, const LangevinOptions& langevin,
                          double entropy_weight);

// Chain starts [N, C, H, W] after the augmentation transitions: each, with probability `prob`,
// translated by up to `shift` pixels in each direction (edge pixels repeated) and, when `flip`,
// mirrored left-right with probability 1/2. Uses the global generator. Returns a new tensor.
torch::Tensor augment_chain_starts(const torch::Tensor& x, double prob, int64_t shift, bool flip);

}  // namespace ebm
