#include "ebm/core/energy.h"

#include <torch/autograd.h>

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

std::pair<torch::Tensor, torch::Tensor> EnergyModel::energy_and_grad(const torch::Tensor& x,
                                                                     const torch::Tensor& condition,
                                                                     double scale) {
  torch::Tensor x_in = x.detach().requires_grad_(true);
  torch::AutoGradMode enable(true);
  torch::Tensor e = energy(x_in, condition);
  const auto total = scale == 1.0 ? e.sum() : (e * scale).sum();
  auto g = torch::autograd::grad({total}, {x_in}, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                 /*create_graph=*/false)[0];
  return {e.detach(), g};
}

bool WeightedSumEnergy::closed_form_gradient() const {
  for (const auto& term : terms_) {
    if (term.first->closed_form_gradient()) return true;
  }
  return false;
}

std::pair<torch::Tensor, torch::Tensor> WeightedSumEnergy::energy_and_grad(
    const torch::Tensor& x, const torch::Tensor& condition, double scale) {
  if (!closed_form_gradient()) return EnergyModel::energy_and_grad(x, condition, scale);
  torch::Tensor energies, grad;
  auto add = [&](const torch::Tensor& e, const torch::Tensor& g) {
    energies = energies.defined() ? energies + e : e;
    grad = grad.defined() ? grad + g : g;
  };
  {
    // The autograd terms' weighted sum, differentiated once.
    torch::Tensor x_in = x.detach().requires_grad_(true);
    torch::AutoGradMode enable(true);
    torch::Tensor sum;
    for (auto& [model, weight] : terms_) {
      if (model->closed_form_gradient()) continue;
      torch::Tensor e = model->energy(x_in, condition) * weight;
      sum = sum.defined() ? sum + e : e;
    }
    if (sum.defined()) {
      const auto total = scale == 1.0 ? sum.sum() : (sum * scale).sum();
      add(sum.detach(), torch::autograd::grad({total}, {x_in}, {}, false, false)[0]);
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [model, weight] : terms_) {
    if (!model->closed_form_gradient()) continue;
    auto [e, g] = model->energy_and_grad(x, condition, scale * weight);
    add(e * weight, g);
  }
  return {energies, grad};
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
