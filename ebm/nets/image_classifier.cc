#include "ebm/nets/image_classifier.h"

#include <torch/torch.h>

#include <stdexcept>
#include <utility>

namespace ebm {

ImageClassifierImpl::ImageClassifierImpl(ImageClassifierOptions o) : options_(std::move(o)) {
  if (options_.filters().empty() || options_.num_classes() < 2 || options_.in_channels() < 1)
    throw std::invalid_argument("ImageClassifier: needs >= 1 stage, >= 2 classes, >= 1 channel");
  convs_ = register_module("convs", torch::nn::ModuleList());
  int64_t in = options_.in_channels();
  for (int64_t f : options_.filters()) {
    convs_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, f, 3).padding(1)));
    convs_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(f, f, 3).padding(1)));
    in = f;
  }
  hidden_ = register_module("hidden", torch::nn::Linear(in, options_.feature_dim()));
  head_ =
      register_module("head", torch::nn::Linear(options_.feature_dim(), options_.num_classes()));
}

torch::Tensor ImageClassifierImpl::features(const torch::Tensor& x) {
  auto h = x * 2 - 1;
  for (size_t i = 0; i < convs_->size(); ++i) {
    h = torch::relu(convs_[i]->as<torch::nn::Conv2d>()->forward(h));
    if (i % 2 == 1 && h.size(2) >= 2 && h.size(3) >= 2) h = torch::max_pool2d(h, 2);
  }
  h = h.mean({2, 3});
  return torch::relu(hidden_->forward(h));
}

torch::Tensor ImageClassifierImpl::head(const torch::Tensor& features) {
  return head_->forward(features);
}

torch::Tensor ImageClassifierImpl::forward(const torch::Tensor& x) { return head(features(x)); }

}  // namespace ebm
