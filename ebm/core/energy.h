// The energy-model interface shared by every domain, and weighted sums of energies.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <utility>
#include <vector>

namespace ebm {

// An energy model assigns one scalar energy to each sample of a batch; low energy = likely.
// `condition` is optional (undefined tensor when absent): a class label, a history window, ...
class EnergyModel : public torch::nn::Module {
 public:
  ~EnergyModel() override = default;
  // x: [N, ...] -> energies [N].
  virtual torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition = {}) = 0;
  // What a Langevin step needs: the energies [N] (detached) and the gradient of
  // scale * sum(energies) with respect to x (x itself is not changed). The default
  // differentiates energy() with autograd; models whose gradient has a closed form (the
  // trajectory experts) override it and closed_form_gradient(), which saves the autograd graph.
  virtual std::pair<torch::Tensor, torch::Tensor> energy_and_grad(const torch::Tensor& x,
                                                                  const torch::Tensor& condition,
                                                                  double scale = 1.0);
  virtual bool closed_form_gradient() const { return false; }
};

// A weighted sum of energy models is itself an energy model (a product of experts):
// E(x | c) = sum_i w_i * E_i(x | c).
class WeightedSumEnergy : public EnergyModel {
 public:
  WeightedSumEnergy() = default;
  WeightedSumEnergy& add(std::shared_ptr<EnergyModel> model, double weight = 1.0);
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition = {}) override;
  // The terms without a closed-form gradient in one autograd pass, the others added in closed
  // form (all terms through one autograd pass, as the default, when none has one).
  std::pair<torch::Tensor, torch::Tensor> energy_and_grad(const torch::Tensor& x,
                                                          const torch::Tensor& condition,
                                                          double scale = 1.0) override;
  bool closed_form_gradient() const override;
  size_t size() const { return terms_.size(); }

 private:
  std::vector<std::pair<std::shared_ptr<EnergyModel>, double>> terms_;
};

// The energies of every class for each sample: E(x_i, y) for y = 0 .. num_classes - 1, as
// [N, num_classes] (x tiled over the labels in one batch of N * num_classes). -class_energies are
// the logits of p(y | x) = softmax_y(-E(x, y)): classification by energy, and the hybrid (JEM)
// term of the trainer.
torch::Tensor class_energies(EnergyModel& model, const torch::Tensor& x, int64_t num_classes);

}  // namespace ebm
