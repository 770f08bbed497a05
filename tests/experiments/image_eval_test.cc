// The image experiments: completion keeps unmasked pixels bit for bit; `ebm eval ood` and
// `ebm eval robustness` run end to end on a slice of real Fashion-MNIST with tiny models, their
// metrics.json read back by Python's json module; config errors name the key.
#include "ebm/experiments/image_eval.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "ebm/core/config.h"
#include "ebm/core/langevin.h"
#include "ebm/experiments/image_train.h"
#include "ebm/nets/image_nets.h"
#include "tests/support/python_check.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
namespace ex = ebm::experiments;
using ebm::testing::PythonCheck;

namespace {

constexpr char kData[] = "/usr/share/datasets/fashion-mnist";

// Trains a tiny Fashion-MNIST EBM (conditional or not) into dir/ebm and returns its checkpoint
// folder.
std::string TinyEbm(const std::string& dir, bool conditional) {
  const std::string cfg = dir + "/ebm.yaml";
  std::ofstream(cfg)
      << "name: tiny\nseed: 1\ndevice: cpu\n"
      << "data: {format: fashion_mnist, path: " << kData << ", limit: 512}\n"
      << "model: {net: small_cnn, stem_filters: 8, stage_filters: [8, 16], spectral_norm: false, "
      << "conditional: " << (conditional ? "true" : "false") << "}\n"
      << "langevin: {steps: 10, step_size: 1.0, noise_std: 0.01, clip_mode: none}\n"
      << "replay_buffer: {capacity: 256, storage: uint8}\n"
      << "trainer: {iterations: 60, batch_size: 32, l2_coeff: 0.1, lr: 1.0e-3}\n"
      << "logging: {log_every: 20, sample_every: 60, checkpoint_every: 60, keep_last: 2}\n";
  ex::TrainRunOptions t;
  t.config_path = cfg;
  t.out_dir = dir + "/ebm";
  t.quiet = true;
  ex::train_image_ebm(t);
  return dir + "/ebm/checkpoints";
}

std::string Common(const std::string& dir, const std::string& experiment, const std::string& ckpt) {
  std::ostringstream s;
  s << "experiment: " << experiment << "\nname: t\nseed: 0\ndevice: cpu\n"
    << "ebm: {checkpoint: " << ckpt << "}\n"
    << "data: {format: fashion_mnist, path: " << kData << ", split: test, limit: 200}\n"
    << "classifier: {path: " << dir
    << "/cls.pt, epochs: 6, batch_size: 32, lr: 3.0e-3, train_limit: 3000, filters: [8, 16], "
       "feature_dim: 16}\n";
  return s.str();
}

class ImageEval : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kData)) GTEST_SKIP() << "needs Debian's dataset-fashion-mnist";
  }
};

}  // namespace

TEST(Completion, MasksHaveTheirShapes) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto box = ex::completion_mask("box", 2, 28, 28, 0.5, gen);
  EXPECT_EQ(box.sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_EQ(box[0].sum().item<int64_t>(), 14 * 14);
  EXPECT_TRUE(box[0][0][14][14].item<bool>());
  EXPECT_FALSE(box[0][0][0][0].item<bool>());
  auto half = ex::completion_mask("half", 1, 28, 28, 0, gen);
  EXPECT_EQ(half.sum().item<int64_t>(), 14 * 28);
  EXPECT_TRUE(half[0][0][27][0].item<bool>());
  EXPECT_FALSE(half[0][0][13][27].item<bool>());
  auto sp = ex::completion_mask("salt_pepper", 50, 28, 28, 0.3, gen);
  EXPECT_NEAR(sp.to(torch::kFloat64).mean().item<double>(), 0.3, 0.02);
  EXPECT_THROW(ex::completion_mask("circle", 1, 8, 8, 0.5, gen), std::invalid_argument);
}

TEST(Completion, UnmaskedPixelsStayBitIdenticalAndMaskedOnesMove) {
  torch::manual_seed(0);
  ebm::ImageEnergyNet net(ebm::image_net_preset("small_cnn", 3, 0)
                              .stem_filters(8)
                              .stage_filters({8})
                              .spectral_norm(false));
  auto x = torch::rand({3, 3, 12, 12});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto mask = ex::completion_mask("salt_pepper", 3, 12, 12, 0.5, gen);
  ebm::LangevinSampler sampler(ebm::LangevinOptions().steps(5).step_size(5.0).noise_std(0.01));
  auto out = ex::complete_images(net, sampler, x, mask, 4, {}, gen);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 4, 3, 12, 12}));
  auto m = mask.unsqueeze(1).expand_as(out);
  auto orig = x.unsqueeze(1).expand_as(out);
  EXPECT_TRUE(torch::equal(out.masked_select(~m), orig.masked_select(~m)));
  EXPECT_GT((out.masked_select(m) - orig.masked_select(m)).abs().mean().item<double>(), 0.05);
  // Completions of the same input differ (they start from different noise).
  EXPECT_FALSE(torch::equal(out[0][0], out[0][1]));
}

TEST_F(ImageEval, OodRunsEndToEndAndTheEnergySeparatesNoise) {
  const auto dir = ebm::testing::FreshTempDir("eval_ood");
  const auto ckpt = TinyEbm(dir, false);
  const std::string cfg = dir + "/ood.yaml";
  std::ofstream(cfg)
      << Common(dir, "ood", ckpt)
      << "ood:\n  count: 100\n  sets:\n    uniform: {kind: uniform}\n    constant: {kind: "
         "constant}\n"
      << "    digits: {kind: sklearn_digits}\n    textures: {kind: textures, crop: 32}\n"
      << "    interpolation: {kind: interpolation}\n";
  ex::EvalRunOptions o;
  o.experiment = "ood";
  o.config_path = cfg;
  o.out_dir = dir + "/run";
  o.quiet = true;
  const auto s = ex::run_image_eval(o);
  ASSERT_TRUE(fs::exists(s.report_html));
  EXPECT_TRUE(fs::exists(dir + "/run/ood_sets.png"));
  EXPECT_TRUE(fs::exists(dir + "/cls.pt")) << "the classifier is trained and cached";
  for (const char* set : {"uniform", "constant", "digits", "textures", "interpolation"}) {
    EXPECT_TRUE(PythonCheck(s.metrics_json, std::string("0 <= d['auroc']['") + set +
                                                "']['ebm'] <= 1 and 0 <= d['auroc']['" + set +
                                                "']['classifier_msp'] <= 1"))
        << set;
  }
  // Chains start from uniform noise: even a briefly trained EBM gives noise high energy.
  EXPECT_TRUE(PythonCheck(s.metrics_json, "d['auroc']['uniform']['ebm'] > 0.9")) << s.table;
  EXPECT_TRUE(PythonCheck(s.metrics_json, "0.5 < d['classifier']['test_accuracy'] <= 1"))
      << s.table;
  // The cached classifier is reused (a second run trains nothing and gives the same numbers).
  o.out_dir = dir + "/run2";
  const auto s2 = ex::run_image_eval(o);
  EXPECT_EQ(s2.table, s.table);
}

TEST_F(ImageEval, RobustnessRunsEndToEndAndTheAttackHurtsTheCnn) {
  const auto dir = ebm::testing::FreshTempDir("eval_robust");
  const auto ckpt = TinyEbm(dir, true);
  const std::string cfg = dir + "/rob.yaml";
  std::ofstream(cfg) << Common(dir, "robustness", ckpt)
                     << "robustness: {images: 60, linf_eps: [0, 32], l2_eps: [0, 300], steps: 5, "
                        "purify_steps: 2, batch_size: 30}\n";
  ex::EvalRunOptions o;
  o.experiment = "robustness";
  o.config_path = cfg;
  o.out_dir = dir + "/run";
  o.quiet = true;
  const auto s = ex::run_image_eval(o);
  EXPECT_TRUE(fs::exists(dir + "/run/robustness_linf.png"));
  EXPECT_TRUE(PythonCheck(
      s.metrics_json,
      "len(d['accuracy']['linf']['ebm']) == 2 and len(d['accuracy']['l2']['cnn']) == 2"));
  EXPECT_TRUE(PythonCheck(s.metrics_json,
                          "d['accuracy']['linf']['cnn'][1] < d['accuracy']['linf']['cnn'][0]"))
      << s.table;
  EXPECT_TRUE(
      PythonCheck(s.metrics_json, "d['accuracy']['l2']['cnn'][1] < d['accuracy']['l2']['cnn'][0]"))
      << s.table;
  EXPECT_TRUE(PythonCheck(s.metrics_json,
                          "d['accuracy']['linf']['ebm'][1] <= d['accuracy']['linf']['ebm'][0]"))
      << s.table;
}

TEST_F(ImageEval, ConfigErrorsNameTheKey) {
  const auto dir = ebm::testing::FreshTempDir("eval_errors");
  ex::EvalRunOptions o;
  o.quiet = true;
  o.out_dir = dir + "/run";
  o.experiment = "ood";
  o.config_path = dir + "/a.yaml";
  std::ofstream(o.config_path) << Common(dir, "robustness", dir);
  try {
    ex::run_image_eval(o);
    FAIL() << "a robustness config must not run as ood";
  } catch (const ebm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ebm eval robustness"), std::string::npos) << e.what();
  }
  std::ofstream(o.config_path) << Common(dir, "ood", dir) << "ood: {count: 100, setz: {}}\n";
  try {
    ex::run_image_eval(o);
    FAIL() << "an unknown key must be refused";
  } catch (const ebm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ood"), std::string::npos) << e.what();
  }
  o.experiment = "painting";
  EXPECT_THROW(ex::run_image_eval(o), std::invalid_argument);
}

TEST(EvalConfigs, EveryShippedConfigIsValid) {
  int checked = 0;
  for (const auto& e : fs::directory_iterator(std::string(EBM_TEST_SOURCE_DIR) + "/configs/eval")) {
    if (e.path().extension() != ".yaml") continue;
    const std::string stem = e.path().stem().string();
    ex::EvalRunOptions o;
    o.experiment = stem.substr(0, stem.find('_'));  // <experiment>_<data>.yaml
    o.config_path = e.path().string();
    o.check_only = true;
    EXPECT_NO_THROW(ex::run_image_eval(o)) << o.config_path;
    ++checked;
  }
  EXPECT_GE(checked, 12);
  // And a typo is caught by the same check.
  const auto dir = ebm::testing::FreshTempDir("eval_typo");
  ex::EvalRunOptions o;
  o.experiment = "completion";
  o.config_path = dir + "/c.yaml";
  o.check_only = true;
  std::ofstream(o.config_path)
      << "experiment: completion\nebm: {checkpoint: x}\ndata: {path: y}\ncompletion: {stepz: 3}\n";
  EXPECT_THROW(ex::run_image_eval(o), ebm::ConfigError);
}
