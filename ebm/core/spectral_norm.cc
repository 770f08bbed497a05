#include "ebm/core/spectral_norm.h"

#include <torch/torch.h>

#include <cmath>
#include <utility>

#include "ebm/core/langevin_graph.h"

namespace ebm {

namespace {
torch::Tensor as_matrix(const torch::Tensor& w) { return w.reshape({w.size(0), -1}); }
}  // namespace

SpectralNormState::SpectralNormState(torch::nn::Module& owner, const torch::Tensor& weight,
                                     SpectralNormOptions options)
    : options_(options) {
  torch::NoGradGuard no_grad;
  auto w = as_matrix(weight);
  u_ = owner.register_buffer("sn_u", torch::nn::functional::normalize(
                                         torch::randn({w.size(0)}, w.options()),
                                         torch::nn::functional::NormalizeFuncOptions().dim(0)));
  v_ = owner.register_buffer("sn_v", torch::nn::functional::normalize(
                                         torch::randn({w.size(1)}, w.options()),
                                         torch::nn::functional::NormalizeFuncOptions().dim(0)));
  // Converge u, v at construction (as PyTorch's parametrization does), so that an eval-mode
  // forward before any training step divides by a sensible sigma, not by u0^T W v0 of random
  // vectors, which can be arbitrarily small.
  const auto per_forward = options_.n_power_iterations();
  options_.n_power_iterations(15);
  normalize(weight, /*update=*/true);
  options_.n_power_iterations(per_forward);
}

torch::Tensor SpectralNormState::normalize(const torch::Tensor& weight, bool update) {
  if (!update && capturing_chain()) {
    // Inside a CUDA graph the division is captured, so every replay reads the current weights.
    torch::NoGradGuard no_grad;
    return weight / torch::dot(u_, torch::mv(as_matrix(weight), v_));
  }
  if (!update) {
    if (!cached_.defined() || cached_ptr_ != weight.data_ptr() ||
        cached_weight_version_ != weight._version() || cached_u_version_ != u_._version()) {
      torch::NoGradGuard no_grad;
      cached_ = weight / torch::dot(u_, torch::mv(as_matrix(weight), v_));
      cached_ptr_ = weight.data_ptr();
      cached_weight_version_ = weight._version();
      cached_u_version_ = u_._version();
    }
    return cached_;
  }
  cached_ = torch::Tensor();
  auto w = as_matrix(weight);
  {
    torch::NoGradGuard no_grad;
    const double eps = options_.eps();
    for (int64_t i = 0; i < options_.n_power_iterations(); ++i) {
      auto v = torch::mv(w.t(), u_);
      v_.copy_(v / (v.norm() + eps));
      auto u = torch::mv(w, v_);
      u_.copy_(u / (u.norm() + eps));
    }
  }
  // sigma = u^T W v with u, v treated as constants (as PyTorch's spectral_norm does).
  auto sigma = torch::dot(u_, torch::mv(w, v_));
  return weight / sigma;
}

torch::Tensor SpectralNormState::sigma(const torch::Tensor& weight) const {
  torch::NoGradGuard no_grad;
  return torch::dot(u_, torch::mv(as_matrix(weight), v_));
}

SNLinearImpl::SNLinearImpl(int64_t in, int64_t out, SpectralNormOptions sn, bool bias)
    : in_(in), out_(out), with_bias_(bias), sn_options_(sn) {
  reset();
}

void SNLinearImpl::reset() {
  weight = register_parameter("weight", torch::empty({out_, in_}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias_) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    bias = register_parameter("bias", torch::empty({out_}).uniform_(-bound, bound));
  }
  sn_ = SpectralNormState(*this, weight, sn_options_);
}

torch::Tensor SNLinearImpl::forward(const torch::Tensor& x) {
  return torch::linear(x, sn_.normalize(weight, is_training()), bias);
}

SNConv2dImpl::SNConv2dImpl(torch::nn::Conv2dOptions opts, SpectralNormOptions sn)
    : options(std::move(opts)), sn_options_(sn) {
  reset();
}

void SNConv2dImpl::reset() {
  const auto k = *options.kernel_size();
  weight = register_parameter(
      "weight", torch::empty({options.out_channels(), options.in_channels(), k[0], k[1]}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (options.bias()) {
    const double fan_in = static_cast<double>(options.in_channels() * k[0] * k[1]);
    const double bound = 1.0 / std::sqrt(fan_in);
    bias =
        register_parameter("bias", torch::empty({options.out_channels()}).uniform_(-bound, bound));
  }
  sn_ = SpectralNormState(*this, weight, sn_options_);
}

torch::Tensor SNConv2dImpl::forward(const torch::Tensor& x) {
  const auto& pad = std::get<torch::ExpandingArray<2>>(options.padding());
  return torch::conv2d(x, sn_.normalize(weight, is_training()), bias, *options.stride(), *pad,
                       *options.dilation(), options.groups());
}

}  // namespace ebm
