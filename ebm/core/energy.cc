#include "ebm/core/energy.h"

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
