// Feature extractors for FID / KID / Inception Score.
//  - InceptionFeatures: the TorchScript Inception-v3 `inception-2015-12-05.pt` that common FID
//    tools use (a direct translation of TensorFlow's 2015 graph). Called as the tools call it:
//    uint8-valued [N, 3, H, W] images (grey images repeated to 3 channels, any size; the network
//    resizes to 299 itself); `return_features=True` gives the 2048 pool features,
//    `no_output_bias=True` the class probabilities. Numbers from it are comparable with papers.
//  - ClassifierFeatures: the penultimate layer and softmax of a classifier this project trained.
//    Numbers from it are NOT comparable with published ones; every output says so.
#pragma once

#include <torch/types.h>

#include <Eigen/Core>
#include <memory>
#include <string>

#include "ebm/nets/image_classifier.h"

namespace ebm::eval {

class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  // x: float [N, C, H, W] in [0, 1]. Fills features [N, D] and class probabilities [N, K] (float64,
  // CPU); either pointer may be null.
  virtual void extract(const torch::Tensor& x, torch::Tensor* features, torch::Tensor* probs) = 0;
  virtual std::string name() const = 0;
  // True only for the published Inception network.
  virtual bool comparable_with_published() const = 0;
};

// Loads the TorchScript file; throws std::runtime_error naming the file when it is missing or not
// a TorchScript module.
std::unique_ptr<FeatureExtractor> inception_features(const std::string& path, torch::Device device);
std::unique_ptr<FeatureExtractor> classifier_features(ImageClassifier classifier);

// Runs the extractor over a large set in batches of 100 (uint8 or float images), returning features
// and probabilities as Eigen matrices (rows = images).
void extract_all(FeatureExtractor& fx, const torch::Tensor& images, Eigen::MatrixXd* features,
                 Eigen::MatrixXd* probs);

// float64 2-D tensor -> Eigen matrix (copies).
Eigen::MatrixXd to_eigen(const torch::Tensor& t);

}  // namespace ebm::eval
