// Spectral normalisation (Miyato et al. 2018), absent from the LibTorch C++ API: W / sigma(W),
// sigma estimated by power iteration on persisted vectors u, v. Training mode updates u, v
// (n_power_iterations per forward); eval mode reuses them unchanged.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/conv.h>
#include <torch/nn/options/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace ebm {

struct SpectralNormOptions {
  TORCH_ARG(int64_t, n_power_iterations) = 1;
  TORCH_ARG(double, eps) = 1e-12;
};

// Power-iteration state for one weight; the owning module registers u and v as buffers.
class SpectralNormState {
 public:
  SpectralNormState() = default;
  SpectralNormState(torch::nn::Module& owner, const torch::Tensor& weight,
                    SpectralNormOptions options);
  // weight / sigma, updating u and v first when `update` is true (training mode). Without update
  // (eval mode) the weights are treated as constants: W / sigma is computed once without autograd
  // and cached until the weight or u changes (its version counter), so a Langevin chain does not
  // renormalise every weight at every step. Gradients then flow to the input, not the weights.
  torch::Tensor normalize(const torch::Tensor& weight, bool update);
  // The current estimate of the largest singular value (no update).
  torch::Tensor sigma(const torch::Tensor& weight) const;

 private:
  SpectralNormOptions options_;
  torch::Tensor u_, v_;
  torch::Tensor cached_;
  const void* cached_ptr_ = nullptr;
  uint32_t cached_weight_version_ = 0, cached_u_version_ = 0;
};

class SNLinearImpl : public torch::nn::Cloneable<SNLinearImpl> {
 public:
  SNLinearImpl(int64_t in, int64_t out, SpectralNormOptions sn = {}, bool bias = true);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor sigma() const { return sn_.sigma(weight); }
  torch::Tensor weight, bias;

 private:
  int64_t in_, out_;
  bool with_bias_;
  SpectralNormOptions sn_options_;
  SpectralNormState sn_;
};
TORCH_MODULE(SNLinear);

class SNConv2dImpl : public torch::nn::Cloneable<SNConv2dImpl> {
 public:
  SNConv2dImpl(torch::nn::Conv2dOptions options, SpectralNormOptions sn = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor sigma() const { return sn_.sigma(weight); }
  torch::Tensor weight, bias;
  torch::nn::Conv2dOptions options;

 private:
  SpectralNormOptions sn_options_;
  SpectralNormState sn_;
};
TORCH_MODULE(SNConv2d);

}  // namespace ebm
