// Projected gradient descent (PGD) attacks under L-inf and L2 budgets, as in the original code:
// a random start inside the budget, then steps along sign(grad) (L-inf) or grad / |grad| (L2) that
// increase the loss, each followed by a projection onto the budget and onto the image box [0, 1].
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>

namespace ebm::eval {

enum class AttackNorm { kLinf, kL2 };
// "linf" / "l2" (throws std::invalid_argument naming the accepted values).
AttackNorm parse_attack_norm(const std::string& name);
std::string attack_norm_name(AttackNorm norm);

struct PgdOptions {
  TORCH_ARG(AttackNorm, norm) = AttackNorm::kLinf;
  // Budget: max |delta| (L-inf) or max per-image L2 norm of delta, in pixel units of [0, 1].
  TORCH_ARG(double, epsilon) = 8.0 / 255.0;
  // Step length per iteration (same units); the original uses 2/255 for L-inf.
  TORCH_ARG(double, step_size) = 2.0 / 255.0;
  TORCH_ARG(int64_t, steps) = 10;
  TORCH_ARG(bool, random_start) = true;
  // Image box every iterate is clamped to.
  TORCH_ARG(double, clamp_min) = 0.0;
  TORCH_ARG(double, clamp_max) = 1.0;
};

// The attacked loss: per-sample losses [N] of a batch [N, ...]; PGD ascends their sum.
using AttackLoss = std::function<torch::Tensor(const torch::Tensor&)>;

// Returns adversarial examples (detached, same shape as x): each within the budget of its x and
// inside the box. epsilon 0 returns x unchanged. Gradients of the loss's parameters are untouched.
torch::Tensor pgd_attack(const AttackLoss& loss, const torch::Tensor& x, const PgdOptions& options,
                         std::optional<at::Generator> generator = std::nullopt);

// Projects perturbed images onto the budget around x0 and onto the box (exposed for tests and for
// purification, which must stay inside the same budget).
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& x0, AttackNorm norm,
                      double epsilon, double clamp_min = 0.0, double clamp_max = 1.0);

}  // namespace ebm::eval
