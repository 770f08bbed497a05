// Adam as the IGEBM code runs it: beta1 = 0 and beta2 = 0.999 by default, and optionally each
// gradient element clipped to +-(clip_scale * sqrt(v_hat) + clip_offset) before the moments are
// updated, v_hat being the bias-corrected second moment of the previous steps (3 and 0.1 in the
// original). The clip tames the rare huge gradients of contrastive divergence.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "ebm/core/archive_fwd.h"
#include "ebm/core/options.h"

namespace ebm {

struct AdamOptions {
  TORCH_ARG(double, lr) = 3e-4;
  TORCH_ARG(double, beta1) = 0.0;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(bool, clip_grad) = true;
  TORCH_ARG(double, clip_scale) = 3.0;
  TORCH_ARG(double, clip_offset) = 0.1;

 public:  // TORCH_ARG leaves the struct in a private section
  // Throws OptionError ("trainer.<key> must be ...": configs set Adam in the trainer section).
  void validate() const;
};

class Adam {
 public:
  Adam(std::vector<torch::Tensor> params, AdamOptions options = {});
  // One update with the gradients in params[i].grad() and learning rate `lr` (the schedule's).
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return step_; }
  std::vector<torch::Tensor>& params() { return params_; }
  // The first and second moment estimates of every parameter (m then v).
  std::vector<torch::Tensor> moments() const;
  const AdamOptions& options() const { return options_; }

  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  AdamOptions options_;
  int64_t step_ = 0;
};

}  // namespace ebm
