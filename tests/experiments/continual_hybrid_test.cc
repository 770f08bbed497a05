// `ebm eval continual` and `ebm eval hybrid` end to end on slices of real Fashion-MNIST with tiny
// models; their summaries are recomputed by Python from the raw numbers they report (the accuracy
// matrix; the reliability diagram's bins).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ebm/experiments/image_eval.h"
#include "ebm/experiments/image_train.h"
#include "tests/support/python_check.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
namespace ex = ebm::experiments;
using ebm::testing::PythonCheck;

namespace {

constexpr char kData[] = "/usr/share/datasets/fashion-mnist";
constexpr char kTinyNet[] =
    "model: {net: small_cnn, stem_filters: 8, stage_filters: [8, 16], spectral_norm: false, "
    "conditional: true, num_classes: 10}\n"
    "langevin: {steps: 5, step_size: 1.0, noise_std: 0.01, clip_mode: none}\n"
    "replay_buffer: {capacity: 256, storage: uint8}\n";

// Runs `ebm eval <experiment>` on a config quietly into dir/run.
ex::EvalRunSummary RunEval(const std::string& experiment, const std::string& config,
                           const std::string& dir) {
  ex::EvalRunOptions o;
  o.experiment = experiment;
  o.config_path = config;
  o.out_dir = dir + "/run";
  o.quiet = true;
  return ex::run_image_eval(o);
}

class ContinualHybrid : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kData)) GTEST_SKIP() << "needs Debian's dataset-fashion-mnist";
  }
};

}  // namespace

TEST_F(ContinualHybrid, ContinualSummariesFollowFromTheAccuracyMatrix) {
  const auto dir = ebm::testing::FreshTempDir("eval_continual");
  const std::string cfg = dir + "/c.yaml";
  std::ofstream(cfg) << "experiment: continual\nname: t\nseed: 0\ndevice: cpu\n"
                     << "data: {format: fashion_mnist, path: " << kData << ", limit: 3000}\n"
                     << "continual: {classes_per_task: 2, class_order: [1, 0, 9, 8, 3, 2], "
                        "iterations_per_task: 40, test_images_per_task: 60, fisher_samples: 10, "
                        "baseline_lr: 3.0e-3}\n"
                     << kTinyNet
                     << "trainer: {batch_size: 16, l2_coeff: 0.1, lr: 1.0e-3, "
                        "negative_condition: batch, classify_weight: 1.0, classify_over: batch}\n";
  const auto s = RunEval("continual", cfg, dir);
  EXPECT_TRUE(fs::exists(dir + "/run/continual_accuracy.png"));
  EXPECT_TRUE(fs::exists(s.report_html));
  for (const char* m : {"ebm", "finetune", "ewc"}) {
    const std::string r = std::string("d['methods']['") + m + "']";
    EXPECT_TRUE(PythonCheck(s.metrics_json, "len(" + r + "['accuracy_matrix']) == 3")) << m;
    // mean over seen tasks, and forgetting = best earlier accuracy - final accuracy.
    EXPECT_TRUE(
        PythonCheck(s.metrics_json,
                    "all(abs(" + r +
                        "['mean_seen_accuracy'][i] - sum(row) / len(row)) < 1e-12 for i, row in "
                        "enumerate(" +
                        r + "['accuracy_matrix']))"))
        << m;
    EXPECT_TRUE(
        PythonCheck(s.metrics_json, "(lambda a: all(abs(" + r +
                                        "['forgetting'][j] - (max(a[i][j] for i in range(j, 2)) - "
                                        "a[2][j])) < 1e-12 for j in range(2)))(" +
                                        r + "['accuracy_matrix'])"))
        << m;
    EXPECT_TRUE(PythonCheck(
        s.metrics_json, "all(0 <= v <= 1 for row in " + r + "['accuracy_matrix'] for v in row)"))
        << m;
  }
  // Classes 1 (trouser) and 0 (T-shirt) are easy to tell apart: the first task is learned.
  EXPECT_TRUE(
      PythonCheck(s.metrics_json, "d['methods']['finetune']['accuracy_matrix'][0][0] > 0.7"))
      << s.table;
}

TEST_F(ContinualHybrid, HybridReportsCalibrationOodAndAttacksPerModel) {
  const auto dir = ebm::testing::FreshTempDir("eval_hybrid");
  const std::string train = dir + "/ebm.yaml";
  std::ofstream(train) << "name: tiny\nseed: 1\ndevice: cpu\n"
                       << "data: {format: fashion_mnist, path: " << kData << ", limit: 512}\n"
                       << kTinyNet
                       << "trainer: {iterations: 40, batch_size: 16, l2_coeff: 0.1, lr: 1.0e-3, "
                          "classify_weight: 1.0}\n"
                       << "logging: {log_every: 20, sample_every: 40, checkpoint_every: 40}\n";
  ex::TrainRunOptions t;
  t.config_path = train;
  t.out_dir = dir + "/ebm";
  t.quiet = true;
  ex::train_image_ebm(t);
  const std::string cfg = dir + "/h.yaml";
  std::ofstream(cfg) << "experiment: hybrid\nname: t\nseed: 0\ndevice: cpu\n"
                     << "models: {tiny: {checkpoint: " << dir << "/ebm/checkpoints}}\n"
                     << "data: {format: fashion_mnist, path: " << kData
                     << ", split: test, limit: 150}\n"
                     << "classifier: {path: " << dir
                     << "/cls.pt, epochs: 6, batch_size: 32, lr: 3.0e-3, train_limit: 3000, "
                        "filters: [8, 16], feature_dim: 16}\n"
                     << "calibration: {bins: 5}\n"
                     << "ood: {count: 50, sets: {uniform: {kind: uniform}, constant: {kind: "
                        "constant}}}\n"
                     << "robustness: {images: 40, linf_eps: [0, 16], l2_eps: [0, 200], steps: 3, "
                        "purify_steps: 0, batch_size: 20}\n";
  const auto s = RunEval("hybrid", cfg, dir);
  for (const char* f : {"reliability.png", "pgd_linf.png", "pgd_l2.png"})
    EXPECT_TRUE(fs::exists(dir + "/run/" + f)) << f;
  for (const char* m : {"tiny", "cnn"}) {
    const std::string r = std::string("d['models']['") + m + "']";
    const std::string bins = r + "['reliability']";
    // ECE and accuracy recomputed from the bins.
    EXPECT_TRUE(PythonCheck(s.metrics_json, "abs(sum(n * abs(a - c) for n, a, c in zip(" + bins +
                                                "['count'], " + bins + "['accuracy'], " + bins +
                                                "['confidence'])) / 150 - " + r +
                                                "['ece']) < 1e-9"))
        << m;
    EXPECT_TRUE(PythonCheck(s.metrics_json,
                            "sum(" + bins + "['count']) == 150 and abs(sum(n * a for n, a in zip(" +
                                bins + "['count'], " + bins + "['accuracy'])) / 150 - " + r +
                                "['accuracy']) < 1e-9"))
        << m;
    EXPECT_TRUE(
        PythonCheck(s.metrics_json, "all(0 <= " + r +
                                        "['auroc'][k][s] <= 1 for k in ('uniform', 'constant') "
                                        "for s in ('p_x', 'max_p_y_given_x'))"))
        << m;
    EXPECT_TRUE(PythonCheck(s.metrics_json, "len(" + r + "['pgd_accuracy']['linf']) == 2"));
  }
  // The attack at 16/255 hurts the CNN.
  EXPECT_TRUE(PythonCheck(s.metrics_json,
                          "d['models']['cnn']['pgd_accuracy']['linf'][1] < "
                          "d['models']['cnn']['pgd_accuracy']['linf'][0]"))
      << s.table;
}
