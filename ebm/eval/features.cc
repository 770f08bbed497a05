#include "ebm/eval/features.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <utility>
#include <vector>

namespace ebm::eval {

Eigen::MatrixXd to_eigen(const torch::Tensor& t) {
  if (t.dim() != 2) throw std::invalid_argument("to_eigen: expected a 2-D tensor");
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  Eigen::MatrixXd m(c.size(0), c.size(1));
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < c.size(0); ++i)
    for (int64_t j = 0; j < c.size(1); ++j) m(i, j) = p[i * c.size(1) + j];
  return m;
}

namespace {

class InceptionTorchScript : public FeatureExtractor {
 public:
  InceptionTorchScript(const std::string& path, torch::Device device) : device_(device) {
    if (!std::filesystem::exists(path))
      throw std::runtime_error("Inception network '" + path +
                               "' not found (the TorchScript inception-2015-12-05.pt of the common "
                               "FID tools); set features: classifier to use the project's own "
                               "classifier instead (numbers not comparable with papers)");
    try {
      module_ = torch::jit::load(path, device);
    } catch (const c10::Error& e) {
      throw std::runtime_error("Inception network '" + path +
                               "' is not a TorchScript module: " + e.what_without_backtrace());
    }
    module_.eval();
  }
  void extract(const torch::Tensor& x, torch::Tensor* features, torch::Tensor* probs) override {
    torch::NoGradGuard no_grad;
    auto img = x.to(device_);
    if (img.size(1) == 1) img = img.repeat({1, 3, 1, 1});
    if (img.size(1) != 3) throw std::invalid_argument("Inception features need 1 or 3 channels");
    img = (img * 255).round().clamp(0, 255).to(torch::kUInt8);
    if (features) {
      auto f = module_.forward({img}, {{"return_features", true}}).toTensor();
      *features = f.to(torch::kCPU, torch::kFloat64);
    }
    if (probs) {
      auto p = module_.forward({img}, {{"no_output_bias", true}}).toTensor();
      *probs = p.to(torch::kCPU, torch::kFloat64);
    }
  }
  std::string name() const override { return "inception-2015-12-05"; }
  bool comparable_with_published() const override { return true; }

 private:
  torch::Device device_;
  torch::jit::script::Module module_;
};

class ClassifierExtractor : public FeatureExtractor {
 public:
  explicit ClassifierExtractor(ImageClassifier c) : c_(std::move(c)) { c_->eval(); }
  void extract(const torch::Tensor& x, torch::Tensor* features, torch::Tensor* probs) override {
    torch::NoGradGuard no_grad;
    auto dev = c_->parameters().front().device();
    auto f = c_->features(x.to(dev));
    if (features) *features = f.to(torch::kCPU, torch::kFloat64);
    if (probs) *probs = torch::softmax(c_->head(f), 1).to(torch::kCPU, torch::kFloat64);
  }
  std::string name() const override {
    return "project classifier (not comparable with published numbers)";
  }
  bool comparable_with_published() const override { return false; }

 private:
  ImageClassifier c_;
};

}  // namespace

std::unique_ptr<FeatureExtractor> inception_features(const std::string& path,
                                                     torch::Device device) {
  return std::make_unique<InceptionTorchScript>(path, device);
}

std::unique_ptr<FeatureExtractor> classifier_features(ImageClassifier classifier) {
  return std::make_unique<ClassifierExtractor>(std::move(classifier));
}

void extract_all(FeatureExtractor& fx, const torch::Tensor& images, Eigen::MatrixXd* features,
                 Eigen::MatrixXd* probs) {
  const int64_t n = images.size(0), batch = 100;
  std::vector<torch::Tensor> fs, ps;
  for (int64_t i = 0; i < n; i += batch) {
    auto x = images.narrow(0, i, std::min(batch, n - i));
    if (x.scalar_type() == torch::kUInt8) x = x.to(torch::kFloat32) / 255;
    torch::Tensor f, p;
    fx.extract(x, features ? &f : nullptr, probs ? &p : nullptr);
    if (features) fs.push_back(f);
    if (probs) ps.push_back(p);
  }
  if (features) *features = to_eigen(torch::cat(fs));
  if (probs) *probs = to_eigen(torch::cat(ps));
}

}  // namespace ebm::eval
