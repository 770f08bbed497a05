// Elastic weight consolidation (Kirkpatrick et al. 2017), the continual-learning baseline: after
// each task, the diagonal of the Fisher information of log p(y | x) on the task's data anchors the
// parameters; later tasks pay lambda/2 sum_i F_i (theta_i - theta*_i)^2. Online form: the Fishers
// of the tasks add up and the anchor is the parameters after the latest task.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

namespace ebm {

// The empirical diagonal Fisher: the mean over the samples of the squared gradient of
// log p(y_i | x_i) = log_softmax(logits_fn(x_i))[y_i] with respect to each parameter, one sample
// at a time (per-sample gradients, not a batch gradient squared).
std::vector<torch::Tensor> diagonal_fisher(
    const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
    const std::vector<torch::Tensor>& params, const torch::Tensor& x, const torch::Tensor& y);

class ElasticWeightConsolidation {
 public:
  explicit ElasticWeightConsolidation(double lambda) : lambda_(lambda) {}
  // Adds a task's Fisher and anchors at the parameters' current values.
  void consolidate(const std::vector<torch::Tensor>& params,
                   const std::vector<torch::Tensor>& fisher);
  // lambda/2 sum F (theta - theta*)^2 (0 before the first consolidation).
  torch::Tensor penalty(const std::vector<torch::Tensor>& params) const;
  bool empty() const { return fisher_.empty(); }

 private:
  double lambda_;
  std::vector<torch::Tensor> fisher_, anchor_;
};

}  // namespace ebm
