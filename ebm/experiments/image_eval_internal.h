// Shared pieces of the image experiments (not installed; included by ebm/experiments/*.cc only).
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "ebm/core/config.h"
#include "ebm/experiments/image_eval.h"
#include "ebm/experiments/image_train.h"
#include "ebm/nets/image_classifier.h"
#include "ebm/report/html.h"
#include "ebm/util/json.h"

namespace ebm::experiments::detail {

// Section `ebm`: which trained image EBM an experiment uses.
//   train_config  the `ebm train` config; its run (runs/<name>) is trained first when it holds no
//                 checkpoint
//   checkpoint    a checkpoint file or folder instead (empty: the latest of the train_config run)
//   ensemble      use the mean energy of the newest K checkpoints of that folder (default 1)
struct EbmSource {
  std::string train_config, checkpoint;
  int64_t ensemble = 1;
};
EbmSource read_ebm_source(const ConfigSection& s);

// Section `data`: format, path, split, limit (0 = all). Throws naming the key on a bad value.
struct DataSpec {
  std::string format, path, split;
  int64_t limit = 0;
};
DataSpec read_data_spec(const ConfigSection& s, const std::string& default_split);
data::ImageDataset load_data(const DataSpec& d, uint64_t seed);

// Section `classifier`: the baseline CNN, trained on `train_data` when `path` does not exist.
struct ClassifierSpec {
  std::string path;
  int64_t epochs = 2, batch_size = 128, feature_dim = 128;
  int64_t train_limit = 0;  // training images (a seeded random subset); 0 = the whole train split
  double lr = 1e-3;
  std::vector<int64_t> filters{32, 64, 128};
};
ClassifierSpec read_classifier_spec(const ConfigSection& s, const std::string& default_path);

// The sections most experiments share: `ebm`, `data` (default split test) and `classifier`
// (default path runs/classifiers/<data format>.pt).
struct CommonSpec {
  EbmSource ebm;
  DataSpec data;
  ClassifierSpec classifier;
};
CommonSpec read_common(const ConfigSection& root);

// The number of classes of a conditional EBM; throws ConfigError naming the experiment otherwise.
int64_t require_conditional(const LoadedImageEbm& ebm, const ConfigSection& root,
                            const std::string& experiment);

struct Context {
  std::string experiment, config_path, name, run_dir;
  std::shared_ptr<Config> config;
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;
  bool quiet = false;
  bool check_only = false;
  util::Json metrics = util::Json::object();
  std::unique_ptr<report::HtmlPage> page;
  EvalRunSummary summary;

  // Resolves (training when needed) and loads the newest EBM; `ensemble`, when given, receives the
  // nets of the src.ensemble newest checkpoints, oldest first, the returned one's net last.
  LoadedImageEbm load_ebm(const EbmSource& src,
                          std::vector<std::shared_ptr<ImageEnergyNet>>* ensemble = nullptr);
  // Loads the classifier, training and saving it first when its file is missing; the training
  // data is the given data set's train split.
  ImageClassifier classifier(const ClassifierSpec& spec, const DataSpec& train_data);
  // Records the classifier's path and its accuracy on (up to 2000 of) the test split in metrics.
  void note_classifier(ImageClassifier& model, const ClassifierSpec& spec, const DataSpec& data);
  // Writes a PNG grid into the run directory and the report; returns its path.
  std::string figure(const std::string& file, const torch::Tensor& images, int64_t nrow,
                     const std::string& caption);
  void log(const std::string& line) const;
  // Call once every key is read: refuses unknown keys; true when the run stops there (--check).
  bool checked_only() const;
};

// Images converted to `shape` ({C, H, W}): channels, then bilinear resize; float in [0, 1].
torch::Tensor conform(const torch::Tensor& images, const std::vector<int64_t>& shape);

// Trains `model` for `epochs` with Adam and cross-entropy on float images in [0, 1].
void train_classifier(ImageClassifier& model, const torch::Tensor& images,
                      const torch::Tensor& labels, const ClassifierSpec& spec, torch::Device device,
                      uint64_t seed, bool quiet);
// Accuracy of argmax logits over a set, in batches.
double classifier_accuracy(ImageClassifier& model, const torch::Tensor& images,
                           const torch::Tensor& labels);

std::string fmt4(double v);

void run_generation(Context& c);
void run_completion(Context& c);
void run_crossclass(Context& c);
void run_ood(Context& c);
void run_robustness(Context& c);
void run_compose(Context& c);

}  // namespace ebm::experiments::detail
