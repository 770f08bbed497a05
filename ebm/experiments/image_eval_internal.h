// Shared pieces of the image experiments (not installed; included by ebm/experiments/*.cc only).
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "ebm/core/config.h"
#include "ebm/core/langevin.h"
#include "ebm/eval/adversarial.h"
#include "ebm/experiments/image_eval.h"
#include "ebm/experiments/image_train.h"
#include "ebm/nets/image_classifier.h"
#include "ebm/report/html.h"
#include "ebm/report/plot.h"
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
  // Writes a line chart (report::line_chart) into the run directory and the report with its
  // caption and a legend of the series' colours; returns its path.
  std::string chart(const std::string& file, const std::vector<report::Series>& series,
                    double y_min, double y_max, const std::string& caption, int64_t width = 480,
                    int64_t height = 280);
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

// Histogram densities of named score lists over shared bins, as series for a line chart; y_max
// receives the largest density.
std::vector<report::Series> score_histograms(
    const std::vector<std::pair<std::string, std::vector<double>>>& sets, int bins, double* y_max);

// One OOD set of `ebm eval ood` (and `ebm eval hybrid`): a section of `ood.sets`.
struct OodSet {
  std::string name, kind;
  DataSpec data;                   // kind "dataset"
  std::string path;                // kind "sklearn_digits" (csv), "textures" (folder or files)
  std::vector<std::string> files;  // kind "textures"
  int64_t crop = 64;
};
OodSet read_ood_set(const ConfigSection& s, const std::string& name);
// The OOD images of one set, conformed to `shape`, float [count, C, H, W] (in_dist: the
// in-distribution images, for kind "interpolation").
torch::Tensor make_ood_set(const OodSet& s, int64_t count, const std::vector<int64_t>& shape,
                           const torch::Tensor& in_dist, uint64_t seed);
// Scores in batches, higher = more in-distribution: -E(x), or log sum_y exp(-E(x, y)) for a model
// with `classes` > 0.
std::vector<double> ebm_scores(ImageEnergyNet& model, const torch::Tensor& x, int64_t classes,
                               torch::Device dev);
// The classifier's maximum softmax probability, in batches.
std::vector<double> msp_scores(ImageClassifier& model, const torch::Tensor& x, torch::Device dev);

// The keys of section `robustness`.
struct RobustnessSpec {
  int64_t images = 500;
  std::vector<double> linf, l2;  // budgets in units of 1/255
  int64_t steps = 10;
  double step_factor = 2.5;
  bool random_start = true;
  int64_t purify_steps = 10;
  double purify_eps = 8;
  int64_t batch = 100;
};
// Reads and checks section `robustness`.
RobustnessSpec read_robustness_spec(const ConfigSection& s);

using LogitsFn = std::function<torch::Tensor(const torch::Tensor&)>;

// What every attack uses: the settings, the first n test images, the purification and the
// random numbers that attacks and purification share.
struct AttackBench {
  RobustnessSpec spec;
  torch::Tensor x_all, y_all;
  int64_t n = 0;
  torch::Device device = torch::kCPU;
  EnergyModel* marginal = nullptr;            // the EBM's marginal energy
  const LangevinSampler* purifier = nullptr;  // one Langevin step
  at::Generator gen;
};

// Accuracy of `logits_fn` on PGD examples made against `logits_fn` itself (white box), over the
// bench's first n images; with `purify`, the attacked images are purified before classification.
double attacked_accuracy(const AttackBench& bench, const LogitsFn& logits_fn, eval::AttackNorm norm,
                         double eps, bool purify);

// The checks of `ebm eval generation` beyond FID/KID/IS (generation_checks.cc). Sections
// `likelihood` (chains: 0 = off, temperatures, step_size) and `checks` (images per histogram set,
// nearest_samples: 0 = off).
struct GenerationChecks {
  int64_t ais_chains = 64, ais_temperatures = 1000;
  double ais_step_size = 1e-4;
  int64_t images = 1000, nearest_samples = 100;
};
GenerationChecks read_generation_checks(const ConfigSection& root);
// AIS log Z and test log-likelihood (unconditional models), energy histograms of train / test /
// OOD images and the samples, nearest training images of the samples. train, test: float images in
// [0, 1] of the EBM's shape.
void run_generation_checks(Context& c, const GenerationChecks& g, LoadedImageEbm& ebm,
                           const torch::Tensor& train, const torch::Tensor& test,
                           const torch::Tensor& samples);

void run_generation(Context& c);
void run_completion(Context& c);
void run_crossclass(Context& c);
void run_ood(Context& c);
void run_robustness(Context& c);
void run_compose(Context& c);
void run_continual(Context& c);
void run_hybrid(Context& c);

}  // namespace ebm::experiments::detail
