// Image energy nets: the IGEBM ResNet family and a small CNN for 28x28, optionally
// class-conditional (a label-dependent bias on each conv input and a label-dependent gain and bias
// on the second conv of each block, as the original).
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <string>
#include <vector>

#include "ebm/core/energy.h"
#include "ebm/core/options.h"
#include "ebm/core/spectral_norm.h"

namespace ebm {

enum class Activation { kLeakyReLU, kSwish };
inline constexpr EnumName<Activation> kActivationNames[] = {{Activation::kLeakyReLU, "leaky_relu"},
                                                            {Activation::kSwish, "swish"}};

struct ImageEnergyOptions {
  TORCH_ARG(int64_t, in_channels) = 3;
  // Filters of the first conv; each stage's filters; residual blocks per stage. Every stage but
  // the last ends with 2x2 average pooling.
  TORCH_ARG(int64_t, stem_filters) = 128;
  TORCH_ARG(std::vector<int64_t>, stage_filters) = std::vector<int64_t>{128, 128, 128};
  TORCH_ARG(int64_t, blocks_per_stage) = 2;
  // 0 = unconditional; otherwise the number of classes of the conditioning label.
  TORCH_ARG(int64_t, num_classes) = 0;
  // Conditional models: the JEM parametrisation instead of the original's label-modulated blocks:
  // unconditional blocks and a head with one output per class, E(x, y) = -f(x)[y]; without a label
  // E(x) = -log sum_y exp f(x)[y], the marginal.
  TORCH_ARG(bool, class_head) = false;
  TORCH_ARG(Activation, activation) = Activation::kLeakyReLU;
  TORCH_ARG(double, leaky_slope) = 0.2;
  // Dropout inside the blocks when training (ResNet32Large uses 0.5).
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, spectral_norm) = true;
};

// Named presets: "resnet32", "resnet32_large", "resnet32_wider", "resnet32_wider_imagenet",
// "small_cnn" (28x28 grey images). Throws std::invalid_argument naming the known ones.
ImageEnergyOptions image_net_preset(const std::string& name, int64_t in_channels,
                                    int64_t num_classes);

class CondResBlockImpl : public torch::nn::Module {
 public:
  CondResBlockImpl(int64_t in, int64_t out, bool downsample, const ImageEnergyOptions& o);
  // onehot: [N, num_classes] float or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& onehot);

 private:
  torch::Tensor act(const torch::Tensor& x) const;
  ImageEnergyOptions options_;
  bool downsample_;
  torch::nn::AnyModule conv1_, conv2_, skip_;
  torch::Tensor cond_bias1_, cond_gain2_, cond_bias2_;  // [num_classes, C] each
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(CondResBlock);

class ImageEnergyNet : public EnergyModel {
 public:
  explicit ImageEnergyNet(ImageEnergyOptions options);
  // x: [N, C, H, W] in [0, 1]; condition: long labels [N] or (soft) one-hot [N, num_classes].
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition = {}) override;
  const ImageEnergyOptions& options() const { return options_; }

 private:
  torch::Tensor onehot(const torch::Tensor& condition, int64_t n) const;
  torch::Tensor features(const torch::Tensor& x, const torch::Tensor& onehot);  // [N, C_last]
  ImageEnergyOptions options_;
  torch::nn::AnyModule stem_;
  torch::nn::ModuleList blocks_;
  torch::nn::Linear head_{nullptr};
};

// Classification by energy: labels argmin_y E(x, y), tiling x over all labels. Returns the
// predicted labels [N] and, if logits != nullptr, the logits -E(x, y) as [N, num_classes].
torch::Tensor classify_by_energy(EnergyModel& model, const torch::Tensor& x, int64_t num_classes,
                                 torch::Tensor* logits = nullptr);

}  // namespace ebm
