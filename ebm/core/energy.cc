#include "ebm/core/energy.h"

#include <torch/autograd.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

namespace ebm {

WeightedSumEnergy& WeightedSumEnergy::add(std::shared_ptr<EnergyModel> model, double weight) {
  if (!model) throw std::invalid_argument("WeightedSumEnergy::add: model is null");
  register_module("term" + std::to_string(terms_.size()),
                  std::dynamic_pointer_cast<torch::nn::Module>(model));
  terms_.emplace_back(std::move(model), weight);
  return *this;
}

torch::Tensor WeightedSumEnergy::energy(const torch::Tensor& x, const torch::Tensor& condition) {
  if (terms_.empty()) throw std::logic_error("WeightedSumEnergy: no terms");
  torch::Tensor total;
  for (auto& [model, weight] : terms_) {
    torch::Tensor e = model->energy(x, condition) * weight;
    total = total.defined() ? total + e : e;
  }
  return total;
}

namespace {

// The energies that `energies` computes from a fresh leaf copy of x (detached) and the gradient of
// scale * their sum with respect to x, by autograd.
std::pair<torch::Tensor, torch::Tensor> autograd_energy_and_grad(
    const std::function<torch::Tensor(const torch::Tensor&)>& energies, const torch::Tensor& x,
    double scale) {
  torch::Tensor x_in = x.detach().requires_grad_(true);
  torch::AutoGradMode enable(true);
  torch::Tensor e = energies(x_in);
  const auto total = scale == 1.0 ? e.sum() : (e * scale).sum();
  auto g = torch::autograd::grad({total}, {x_in}, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                 /*create_graph=*/false)[0];
  return {e.detach(), g};
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> EnergyModel::energy_and_grad(const torch::Tensor& x,
                                                                     const torch::Tensor& condition,
                                                                     double scale) {
  return autograd_energy_and_grad(
      [&](const torch::Tensor& x_in) { return energy(x_in, condition); }, x, scale);
}

bool WeightedSumEnergy::closed_form_gradient() const {
  return std::any_of(terms_.begin(), terms_.end(),
                     [](const auto& term) { return term.first->closed_form_gradient(); });
}

std::pair<torch::Tensor, torch::Tensor> WeightedSumEnergy::energy_and_grad(
    const torch::Tensor& x, const torch::Tensor& condition, double scale) {
  if (!closed_form_gradient()) return EnergyModel::energy_and_grad(x, condition, scale);
  // The terms without a closed form: their weighted sum, differentiated by autograd once.
  auto autograd_terms = [&](const torch::Tensor& x_in) {
    torch::Tensor sum;
    for (auto& [model, weight] : terms_) {
      if (model->closed_form_gradient()) continue;
      torch::Tensor e = model->energy(x_in, condition) * weight;
      sum = sum.defined() ? sum + e : e;
    }
    return sum;
  };
  const bool any_autograd = std::any_of(terms_.begin(), terms_.end(), [](const auto& term) {
    return !term.first->closed_form_gradient();
  });
  std::pair<torch::Tensor, torch::Tensor> total;
  if (any_autograd) total = autograd_energy_and_grad(autograd_terms, x, scale);
  auto& [energies, grad] = total;
  torch::NoGradGuard no_grad;
  for (auto& [model, weight] : terms_) {
    if (!model->closed_form_gradient()) continue;
    auto [e, g] = model->energy_and_grad(x, condition, scale * weight);
    energies = energies.defined() ? energies + e * weight : e * weight;
    grad = grad.defined() ? grad + g : g;
  }
  return total;
}

torch::Tensor class_energies(EnergyModel& model, const torch::Tensor& x, int64_t num_classes) {
  if (num_classes < 1)
    throw std::invalid_argument("class_energies: num_classes must be >= 1, got " +
                                std::to_string(num_classes));
  const int64_t n = x.size(0);
  auto tiled = x.repeat_interleave(num_classes, 0);
  auto labels =
      torch::arange(num_classes, torch::TensorOptions().dtype(torch::kLong).device(x.device()))
          .repeat({n});
  return model.energy(tiled, labels).reshape({n, num_classes});
}

}  // namespace ebm
