// A plain CNN classifier: the baseline of the robustness and out-of-distribution experiments and,
// when no Inception network is supplied, the feature extractor of FID/KID/IS (labelled as not
// comparable with published numbers wherever it is used).
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace ebm {

struct ImageClassifierOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, num_classes) = 10;
  // One stage per entry: two 3x3 convs with ReLU, then 2x2 max pooling.
  TORCH_ARG(std::vector<int64_t>, filters) = std::vector<int64_t>{32, 64, 128};
  // Width of the penultimate dense layer (the feature vector).
  TORCH_ARG(int64_t, feature_dim) = 128;
};

class ImageClassifierImpl : public torch::nn::Module {
 public:
  explicit ImageClassifierImpl(ImageClassifierOptions options = {});
  // x: [N, C, H, W] in [0, 1] -> penultimate features [N, feature_dim] (after ReLU).
  torch::Tensor features(const torch::Tensor& x);
  // -> logits [N, num_classes].
  torch::Tensor forward(const torch::Tensor& x);
  // The last layer alone: features [N, feature_dim] -> logits (forward(x) == head(features(x))).
  torch::Tensor head(const torch::Tensor& features);
  const ImageClassifierOptions& options() const { return options_; }

 private:
  ImageClassifierOptions options_;
  torch::nn::ModuleList convs_;
  torch::nn::Linear hidden_{nullptr}, head_{nullptr};
};
TORCH_MODULE(ImageClassifier);

}  // namespace ebm
