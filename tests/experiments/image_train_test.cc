// `ebm train` / `ebm sample` runs end to end on a slice of real Fashion-MNIST: run directory
// contents, refusal to overwrite, resume == straight training, sampling, config errors.
#include "ebm/experiments/image_train.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "ebm/core/checkpoint.h"
#include "ebm/report/png.h"
#include "ebm/util/files.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
namespace ex = ebm::experiments;

namespace {

constexpr char kData[] = "/usr/share/datasets/fashion-mnist";

std::string WriteConfig(const std::string& dir, const std::string& extra = "") {
  const std::string path = dir + "/tiny.yaml";
  std::ofstream(path) << "name: tiny\nseed: 3\ndevice: cpu\n"
                      << "data: {format: fashion_mnist, path: " << kData << ", limit: 128}\n"
                      << "model: {net: small_cnn, stem_filters: 8, stage_filters: [8, 8]}\n"
                      << "langevin: {steps: 3}\n"
                      << "replay_buffer: {capacity: 64, storage: uint8}\n"
                      << "trainer: {iterations: 6, batch_size: 16}\n"
                      << "logging: {log_every: 2, sample_every: 3, checkpoint_every: 3, keep_last: "
                         "5, num_samples: 8}\n"
                      << extra;
  return path;
}

// The weights and buffers of the tiny config's net, as stored in a checkpoint.
std::vector<torch::Tensor> ModelTensors(const std::string& ckpt) {
  torch::serialize::InputArchive a, model;
  ebm::CheckpointManager::load(ckpt, a);
  a.read("model", model);
  ebm::ImageEnergyNet net(
      ebm::image_net_preset("small_cnn", 1, 0).stem_filters(8).stage_filters({8, 8}));
  net.load(model);
  std::vector<torch::Tensor> out;
  for (auto& p : net.named_parameters()) out.push_back(p.value().detach().clone());
  for (auto& b : net.named_buffers()) out.push_back(b.value().clone());
  return out;
}

}  // namespace

class ImageTrainRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kData)) GTEST_SKIP() << "needs Debian's dataset-fashion-mnist";
  }
};

TEST_F(ImageTrainRun, WritesTheRunDirectoryAndRefusesToOverwrite) {
  const auto dir = ebm::testing::FreshTempDir("run");
  ex::TrainRunOptions o;
  o.config_path = WriteConfig(dir);
  o.out_dir = dir + "/out";
  o.quiet = true;
  auto s = ex::train_image_ebm(o);
  EXPECT_EQ(s.steps, 6);
  EXPECT_TRUE(fs::exists(dir + "/out/config.yaml"));
  EXPECT_TRUE(fs::exists(dir + "/out/checkpoints/ckpt-0000000003.pt"));
  EXPECT_TRUE(fs::exists(dir + "/out/checkpoints/ckpt-0000000006.pt"));
  const auto metrics = ebm::util::read_file(dir + "/out/metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 3);  // steps 2, 4, 6
  EXPECT_NE(metrics.find("{\"step\": 6, \"loss\": "), std::string::npos) << metrics;
  auto png = ebm::report::decode_png(ebm::util::read_file(dir + "/out/samples/step-00000006.png"));
  EXPECT_EQ(png.size(2), 1);
  EXPECT_EQ(png.size(0), 2 + 3 * 30);  // 8 images of 28x28 in a 3x3 grid with 2-pixel padding
  bool has_events = false;
  for (const auto& e : fs::directory_iterator(dir + "/out/tensorboard"))
    has_events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(has_events);
  try {
    ex::train_image_ebm(o);
    FAIL() << "a second run into the same directory must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds checkpoints"), std::string::npos)
        << e.what();
  }
  // Sampling from the checkpoint.
  ex::SampleOptions so;
  so.checkpoint = s.last_checkpoint;
  so.n = 5;
  so.steps = 2;
  so.device = "cpu";
  so.out = dir + "/samples.png";
  auto x = ex::sample_image_ebm(so);
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({5, 1, 28, 28}));
  EXPECT_GE(x.min().item<float>(), 0.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
  EXPECT_TRUE(fs::exists(so.out));
  so.label = 3;
  EXPECT_THROW(ex::sample_image_ebm(so), std::invalid_argument);  // unconditional model
  fs::remove_all(dir);
}

TEST_F(ImageTrainRun, ResumeEqualsTrainingStraight) {
  const auto dir = ebm::testing::FreshTempDir("resume");
  ex::TrainRunOptions straight;
  straight.config_path = WriteConfig(dir);
  straight.out_dir = dir + "/straight";
  straight.overrides = {"trainer.iterations=9"};
  straight.quiet = true;
  ex::train_image_ebm(straight);

  ex::TrainRunOptions first = straight;
  first.out_dir = dir + "/split";
  first.overrides = {"trainer.iterations=6"};
  ex::train_image_ebm(first);
  ex::TrainRunOptions second = first;
  second.overrides = {"trainer.iterations=9"};
  second.resume = true;
  auto s = ex::train_image_ebm(second);
  EXPECT_EQ(s.steps, 9);
  auto a = ModelTensors(dir + "/straight/checkpoints/ckpt-0000000009.pt");
  auto b = ModelTensors(dir + "/split/checkpoints/ckpt-0000000009.pt");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
  fs::remove_all(dir);
}

TEST_F(ImageTrainRun, ConfigErrorsStopBeforeTraining) {
  const auto dir = ebm::testing::FreshTempDir("cfg");
  ex::TrainRunOptions o;
  o.config_path = WriteConfig(dir, "trainr: {lr: 0.1}\n");
  o.out_dir = dir + "/out";
  o.quiet = true;
  try {
    ex::train_image_ebm(o);
    FAIL();
  } catch (const ebm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.yaml:10: unknown key 'trainr'"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/out/checkpoints"));
  o.config_path = WriteConfig(dir);
  o.overrides = {"model.net=resnet9000"};
  try {
    ex::train_image_ebm(o);
    FAIL();
  } catch (const ebm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set model.net: model.net: expected one of"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}
