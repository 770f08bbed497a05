#include "ebm/core/ewc.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace ebm {

std::vector<torch::Tensor> diagonal_fisher(
    const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
    const std::vector<torch::Tensor>& params, const torch::Tensor& x, const torch::Tensor& y) {
  std::vector<torch::Tensor> fisher;
  for (const auto& p : params) fisher.push_back(torch::zeros_like(p));
  const int64_t n = x.size(0);
  for (int64_t i = 0; i < n; ++i) {
    auto log_p = torch::log_softmax(logits_fn(x.narrow(0, i, 1)), 1)[0][y[i].item<int64_t>()];
    auto grads = torch::autograd::grad({log_p}, params, {}, false, false, /*allow_unused=*/true);
    for (size_t k = 0; k < params.size(); ++k) {
      if (grads[k].defined())
        fisher[k].add_(grads[k].detach().pow(2), 1.0 / static_cast<double>(n));
    }
  }
  return fisher;
}

void ElasticWeightConsolidation::consolidate(const std::vector<torch::Tensor>& params,
                                             const std::vector<torch::Tensor>& fisher) {
  if (params.size() != fisher.size())
    throw std::invalid_argument("ewc: " + std::to_string(fisher.size()) + " Fisher tensors for " +
                                std::to_string(params.size()) + " parameters");
  anchor_.clear();
  for (size_t k = 0; k < params.size(); ++k) {
    anchor_.push_back(params[k].detach().clone());
    if (fisher_.size() < params.size()) {
      fisher_.push_back(fisher[k].detach().clone());
    } else {
      fisher_[k].add_(fisher[k].detach());
    }
  }
}

torch::Tensor ElasticWeightConsolidation::penalty(const std::vector<torch::Tensor>& params) const {
  auto total = torch::zeros({}, params.empty() ? torch::TensorOptions() : params[0].options());
  for (size_t k = 0; k < fisher_.size(); ++k)
    total = total + (fisher_[k] * (params[k] - anchor_[k]).pow(2)).sum();
  return 0.5 * lambda_ * total;
}

}  // namespace ebm
