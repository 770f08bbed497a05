#include "ebm/eval/adversarial.h"

#include <torch/torch.h>

#include <stdexcept>
#include <vector>

namespace ebm::eval {

AttackNorm parse_attack_norm(const std::string& name) {
  if (name == "linf") return AttackNorm::kLinf;
  if (name == "l2") return AttackNorm::kL2;
  throw std::invalid_argument("attack norm '" + name + "': expected linf or l2");
}

std::string attack_norm_name(AttackNorm norm) { return norm == AttackNorm::kLinf ? "linf" : "l2"; }

namespace {

// Per-sample L2 norm of [N, ...], shaped [N, 1, 1, ...] for broadcasting.
torch::Tensor sample_norms(const torch::Tensor& t) {
  std::vector<int64_t> shape(t.dim(), 1);
  shape[0] = t.size(0);
  return t.flatten(1).norm(2, 1).reshape(shape);
}

}  // namespace

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& x0, AttackNorm norm,
                      double epsilon, double clamp_min, double clamp_max) {
  auto delta = x - x0;
  if (norm == AttackNorm::kLinf) {
    delta = delta.clamp(-epsilon, epsilon);
  } else {
    auto n = sample_norms(delta);
    delta = delta * torch::clamp(epsilon / (n + 1e-12), c10::nullopt, 1.0);
  }
  return (x0 + delta).clamp(clamp_min, clamp_max);
}

torch::Tensor pgd_attack(const AttackLoss& loss, const torch::Tensor& x, const PgdOptions& o,
                         std::optional<at::Generator> generator) {
  if (o.epsilon() < 0 || o.step_size() < 0 || o.steps() < 0)
    throw std::invalid_argument("pgd_attack: epsilon, step_size and steps must be >= 0");
  auto x0 = x.detach();
  if (o.epsilon() == 0 || o.steps() == 0) return x0.clone();
  torch::Tensor adv;
  if (o.random_start()) {
    if (o.norm() == AttackNorm::kLinf) {
      adv = x0 + (torch::rand(x0.sizes(), generator, x0.options()) * 2 - 1) * o.epsilon();
    } else {
      // A uniform direction and a radius uniform in [0, epsilon].
      auto dir = torch::randn(x0.sizes(), generator, x0.options());
      dir = dir / (sample_norms(dir) + 1e-12);
      std::vector<int64_t> shape(x0.dim(), 1);
      shape[0] = x0.size(0);
      adv = x0 + dir * torch::rand(shape, generator, x0.options()) * o.epsilon();
    }
    adv = project(adv, x0, o.norm(), o.epsilon(), o.clamp_min(), o.clamp_max());
  } else {
    adv = x0.clone();
  }
  for (int64_t s = 0; s < o.steps(); ++s) {
    auto var = adv.detach().requires_grad_(true);
    auto l = loss(var);
    if (l.dim() != 1 || l.size(0) != x0.size(0))
      throw std::invalid_argument("pgd_attack: the loss must return one value per sample");
    auto g = torch::autograd::grad({l.sum()}, {var}, {}, false, false)[0];
    torch::NoGradGuard no_grad;
    torch::Tensor step;
    if (o.norm() == AttackNorm::kLinf) {
      step = g.sign();
    } else {
      step = g / (sample_norms(g) + 1e-12);
    }
    adv = project(adv + o.step_size() * step, x0, o.norm(), o.epsilon(), o.clamp_min(),
                  o.clamp_max());
  }
  return adv.detach();
}

}  // namespace ebm::eval
