// The speed options (ebm/core/performance.h) change how, not what, a run computes. On the CPU
// every option runs its fallback against the plain path; the tests named Cuda* check the CUDA
// paths against eager fp32 where a GPU exists and skip elsewhere (scripts/device_check.sh runs
// them on a GPU machine).
#include "ebm/core/performance.h"

#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/checkpoint.h"
#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"
#include "ebm/core/replay_buffer.h"
#include "ebm/core/trainer.h"
#include "ebm/nets/image_nets.h"
#include "ebm/util/files.h"
#include "ebm/util/prefetch.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

// conv 3->8, swish, conv 8->8, swish, sum pool (+ the condition [N, 8] when given), linear.
class TinyConvEnergy : public ebm::EnergyModel {
 public:
  TinyConvEnergy() {
    conv1_ =
        register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)));
    conv2_ =
        register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 3).padding(1)));
    head_ = register_module("head", torch::nn::Linear(8, 1));
  }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& condition) override {
    auto h = torch::silu(conv2_->forward(torch::silu(conv1_->forward(x)))).sum({2, 3});
    if (condition.defined()) h = h + condition;
    return head_->forward(h).squeeze(1);
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear head_{nullptr};
};

ebm::LangevinOptions ShortChain() {
  return ebm::LangevinOptions().steps(6).step_size(2.0).noise_std(0.01).grad_clip(0.05);
}

// A CUDA device, with cuDNN's deterministic algorithms (some backward algorithms add with
// atomics, which would make two equal computations differ in their last bits).
// Trainer options with the short chain and a small buffer of the given storage.
ebm::TrainerOptions SmallTrainer(ebm::BufferStorage storage) {
  return ebm::TrainerOptions()
      .langevin(ShortChain())
      .buffer(ebm::ReplayBufferOptions().capacity(64).storage(storage));
}

// A model built after seeding the generators with `seed`: equal seeds give equal weights.
template <typename Model, typename... Args>
std::shared_ptr<Model> SeededModel(uint64_t seed, Args&&... args) {
  torch::manual_seed(seed);
  return std::make_shared<Model>(std::forward<Args>(args)...);
}

// One training step after seeding the CPU and CUDA generators with `seed`, so that two trainers
// stepped with the same seed draw the same numbers.
ebm::TrainStepResult SeededStep(ebm::ContrastiveDivergenceTrainer& trainer,
                                const torch::Tensor& batch, uint64_t seed,
                                const torch::Tensor& labels = {}) {
  torch::manual_seed(seed);
  torch::cuda::manual_seed_all(seed);
  return trainer.step(batch, labels);
}

bool HasCuda() {
  if (!torch::cuda::is_available()) return false;
  at::globalContext().setDeterministicCuDNN(true);
  at::globalContext().setBenchmarkCuDNN(false);
  return true;
}

// The chain's samples and per-step statistics from a generator seeded with `seed`.
struct Chain {
  torch::Tensor x;
  std::vector<ebm::LangevinStepStats> stats;
};
Chain RunChain(const ebm::LangevinSampler& sampler, ebm::EnergyModel& model,
               const torch::Tensor& x0, const torch::Tensor& cond, const torch::Tensor& mask,
               uint64_t seed) {
  auto gen = at::globalContext().defaultGenerator(x0.device());
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);  // CUDA's generator also restarts its offset
  }
  Chain c;
  c.x = sampler.sample(model, x0, cond, mask,
                       [&](const ebm::LangevinStepStats& s) { c.stats.push_back(s); });
  return c;
}

void ExpectSameChain(const Chain& a, const Chain& b) {
  EXPECT_TRUE(torch::equal(a.x.cpu(), b.x.cpu()))
      << "max |diff| " << (a.x.cpu() - b.x.cpu()).abs().max().item<double>();
  ASSERT_EQ(a.stats.size(), b.stats.size());
  for (size_t i = 0; i < a.stats.size(); ++i) {
    EXPECT_EQ(a.stats[i].mean_energy, b.stats[i].mean_energy) << "step " << i;
    EXPECT_EQ(a.stats[i].grad_norm, b.stats[i].grad_norm) << "step " << i;
    EXPECT_EQ(a.stats[i].step_size, b.stats[i].step_size) << "step " << i;
  }
}

// Max relative difference of bf16-autocast energies from fp32 ones.
double Bf16RelativeError(ebm::EnergyModel& model, const torch::Tensor& x) {
  const auto fp32 = model.energy(x, {});
  torch::Tensor bf16;
  {
    ebm::AutocastScope autocast(true, x.device());
    bf16 = model.energy(x, {});
    EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);  // autocast really ran the net in bf16
  }
  EXPECT_EQ(model.energy(x, {}).scalar_type(), torch::kFloat32);  // and the scope ended
  return ((bf16.to(torch::kFloat32) - fp32).abs() / fp32.abs().clamp_min(1.0)).max().item<double>();
}

}  // namespace

TEST(Performance, CudaGraphOptionRunsEagerlyOnTheCpu) {
  torch::manual_seed(0);
  TinyConvEnergy model;
  const auto x0 = torch::rand({4, 3, 8, 8});
  const auto mask = torch::rand({1, 3, 8, 8}) > 0.3;
  const ebm::LangevinSampler eager(ShortChain());
  const ebm::LangevinSampler graphed(ShortChain(), ebm::ChainExecution::kCudaGraph);
  ExpectSameChain(RunChain(eager, model, x0, {}, mask, 7),
                  RunChain(graphed, model, x0, {}, mask, 7));
  EXPECT_EQ(graphed.graph_captures(), 0);
}

TEST(Performance, CpuBf16AutocastEnergiesWithinTwoPercentOfFp32) {
  torch::manual_seed(0);
  TinyConvEnergy model;
  const auto x = torch::rand({16, 3, 8, 8});
  const double err = Bf16RelativeError(model, x);
  EXPECT_LT(err, 0.02);
  EXPECT_GT(err, 0.0);  // bf16 rounding shows: it did not silently run in fp32
  // The sampler under autocast: the chain stays fp32, moves, and keeps its box.
  ebm::AutocastScope autocast(true, torch::kCPU);
  const auto x1 = ebm::LangevinSampler(ShortChain()).sample(model, x);
  EXPECT_EQ(x1.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(x1).all().item<bool>());
  EXPECT_GT((x1 - x).abs().max().item<double>(), 0.0);
  EXPECT_GE(x1.min().item<double>(), 0.0);
  EXPECT_LE(x1.max().item<double>(), 1.0);
}

TEST(Performance, TrainerStepsUnderCpuAutocastAndInChannelsLast) {
  const auto opts = SmallTrainer(ebm::BufferStorage::kUint8);
  auto plain_model = SeededModel<TinyConvEnergy>(1);
  auto nhwc_model = SeededModel<TinyConvEnergy>(1);
  auto bf16_model = SeededModel<TinyConvEnergy>(1);
  ebm::ContrastiveDivergenceTrainer plain(plain_model, {3, 8, 8}, opts);
  ebm::ContrastiveDivergenceTrainer nhwc(
      nhwc_model, {3, 8, 8},
      ebm::TrainerOptions(opts).performance(ebm::PerformanceOptions().channels_last(true)));
  ebm::ContrastiveDivergenceTrainer bf16(bf16_model, {3, 8, 8},
                                         ebm::TrainerOptions(opts).autocast_bf16(true));
  for (const auto& p : nhwc_model->parameters()) {
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  const auto batch = torch::rand({8, 3, 8, 8});
  for (int step = 0; step < 3; ++step) {
    const auto a = SeededStep(plain, batch, 100 + step);
    const auto b = SeededStep(nhwc, batch, 100 + step);
    const auto c = SeededStep(bf16, batch, 100 + step);
    // Channels-last: the same arithmetic in another order (float32 sums).
    EXPECT_NEAR(a.loss, b.loss, 1e-4 * (1 + std::abs(a.loss))) << "step " << step;
    EXPECT_NEAR(a.e_neg, b.e_neg, 1e-4 * (1 + std::abs(a.e_neg))) << "step " << step;
    // bf16: a real step with finite numbers near the fp32 ones.
    EXPECT_FALSE(c.skipped);
    EXPECT_NEAR(a.e_pos, c.e_pos, 0.05 * (1 + std::abs(a.e_pos))) << "step " << step;
  }
  for (const auto& p : nhwc_model->parameters()) {
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
}

TEST(Performance, BackendSettingsReachLibTorch) {
  auto& context = at::globalContext();
  const bool tf32 = context.allowTF32CuBLAS(), bench = context.benchmarkCuDNN();
  ebm::apply_backend_settings(ebm::PerformanceOptions().tf32(true).cudnn_benchmark(true));
  EXPECT_TRUE(context.allowTF32CuBLAS());
  EXPECT_TRUE(context.allowTF32CuDNN());
  EXPECT_TRUE(context.benchmarkCuDNN());
  ebm::apply_backend_settings(ebm::PerformanceOptions());
  EXPECT_FALSE(context.allowTF32CuBLAS());
  EXPECT_FALSE(context.allowTF32CuDNN());
  EXPECT_FALSE(context.benchmarkCuDNN());
  context.setAllowTF32CuBLAS(tf32);
  context.setBenchmarkCuDNN(bench);
}

TEST(Performance, BackgroundCheckpointsWriteTheSameBytes) {
  const auto dir = ebm::testing::FreshTempDir("async");
  auto fill_for = [](int64_t step) {
    return [step](torch::serialize::OutputArchive& a) {
      a.write("x", torch::arange(1000, torch::kFloat32) * static_cast<float>(step));
    };
  };
  {
    ebm::CheckpointManager inline_writes(dir + "/inline", 2);
    ebm::CheckpointManager background(dir + "/background", 2, ebm::CheckpointWrites::kBackground);
    for (int64_t step = 1; step <= 3; ++step) {
      inline_writes.save(step, fill_for(step), 10.0 - step);
      background.save(step, fill_for(step), 10.0 - step);
    }
    background.wait();
    ASSERT_EQ(background.list().size(), 2u);  // pruned like the inline writer
    for (const char* name : {"ckpt-0000000002.pt", "ckpt-0000000003.pt", "best.pt", "best.json"}) {
      EXPECT_EQ(ebm::util::read_file(dir + "/background/" + name),
                ebm::util::read_file(dir + "/inline/" + name))
          << name;
    }
  }
  // A write that fails reaches the caller at wait() (or the next save), naming the file.
  ebm::CheckpointManager failing(dir + "/failing", 2, ebm::CheckpointWrites::kBackground);
  fs::create_directories(dir + "/failing/ckpt-0000000004.pt/blocker");
  failing.save(4, fill_for(4));
  try {
    failing.wait();
    ADD_FAILURE() << "the failed write was not reported";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt-0000000004.pt"), std::string::npos) << e.what();
  }
  failing.wait();  // reported once
  fs::remove_all(dir);
}

TEST(Performance, PrefetcherYieldsTheSequenceAndItsErrorsInOrder) {
  for (const bool ahead : {true, false}) {
    std::vector<int64_t> made;
    ebm::util::Prefetcher<int64_t> items(
        [](int64_t i) {
          if (i == 5) throw std::runtime_error("item 5 is bad");
          return i * i;
        },
        2, 8, ahead);
    for (int64_t i = 2; i < 5; ++i) EXPECT_EQ(items.next(), i * i);
    EXPECT_THROW(items.next(), std::runtime_error);
  }
  ebm::util::Prefetcher<int64_t> two([](int64_t i) { return i; }, 0, 2);
  EXPECT_EQ(two.next(), 0);
  EXPECT_EQ(two.next(), 1);
  EXPECT_TRUE(two.done());
  EXPECT_THROW(two.next(), std::out_of_range);
}

TEST(CudaGraphChain, EqualsEagerBitForBitAndRecapturesOnNewShapes) {
  if (!HasCuda()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(0);
  auto model = std::make_shared<TinyConvEnergy>();
  model->to(torch::kCUDA);
  model->eval();
  const ebm::LangevinSampler eager(ShortChain());
  const ebm::LangevinSampler graphed(ShortChain(), ebm::ChainExecution::kCudaGraph);
  const auto x4 = torch::rand({4, 3, 8, 8}, torch::kCUDA);
  const auto x6 = torch::rand({6, 3, 8, 8}, torch::kCUDA);
  const auto cond4 = torch::randn({4, 8}, torch::kCUDA);
  const auto mask = torch::rand({1, 3, 8, 8}, torch::kCUDA) > 0.3;
  ExpectSameChain(RunChain(eager, *model, x4, cond4, mask, 1),
                  RunChain(graphed, *model, x4, cond4, mask, 1));
  EXPECT_EQ(graphed.graph_captures(), 1);
  // A second chain of the same shapes replays the graph with new inputs.
  const auto y4 = torch::rand({4, 3, 8, 8}, torch::kCUDA);
  ExpectSameChain(RunChain(eager, *model, y4, cond4, mask, 2),
                  RunChain(graphed, *model, y4, cond4, mask, 2));
  EXPECT_EQ(graphed.graph_captures(), 1);
  // New shapes (and no mask, no condition) are captured anew.
  ExpectSameChain(RunChain(eager, *model, x6, {}, {}, 3), RunChain(graphed, *model, x6, {}, {}, 3));
  EXPECT_EQ(graphed.graph_captures(), 2);
  // Weights updated in place are seen by the replay (the graph reads them by address).
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(0.9);
  }
  ExpectSameChain(RunChain(eager, *model, x6, {}, {}, 4), RunChain(graphed, *model, x6, {}, {}, 4));
  EXPECT_EQ(graphed.graph_captures(), 2);
  // Under bf16 autocast (part of the signature: a new capture), after an eager chain has filled
  // autocast's cache of weight casts, which the capture must not reuse.
  {
    ebm::AutocastScope autocast(true, torch::kCUDA);
    ExpectSameChain(RunChain(eager, *model, x6, {}, {}, 5),
                    RunChain(graphed, *model, x6, {}, {}, 5));
  }
  EXPECT_EQ(graphed.graph_captures(), 3);
}

TEST(CudaAutocast, Bf16EnergiesWithinTwoPercentOfFp32) {
  if (!HasCuda()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(0);
  TinyConvEnergy model;
  model.to(torch::kCUDA);
  const double err = Bf16RelativeError(model, torch::rand({64, 3, 8, 8}, torch::kCUDA));
  EXPECT_LT(err, 0.02);
  EXPECT_GT(err, 0.0);
}

TEST(CudaReplayBuffer, StatesKeptOnTheDeviceMatchTheCpuBuffer) {
  if (!HasCuda()) GTEST_SKIP() << "no CUDA device";
  const auto opts = ebm::ReplayBufferOptions().capacity(32).storage(ebm::BufferStorage::kUint8);
  ebm::ReplayBuffer on_cpu({3, 4, 4}, opts);
  ebm::ReplayBuffer on_gpu({3, 4, 4}, opts, torch::kCUDA);
  EXPECT_TRUE(on_gpu.storage_device().is_cuda());
  torch::manual_seed(0);
  for (int i = 0; i < 3; ++i) {
    const auto x = torch::rand({16, 3, 4, 4});
    on_cpu.push(x);
    on_gpu.push(x.to(torch::kCUDA));
  }
  EXPECT_TRUE(torch::equal(on_cpu.states(), on_gpu.states()));  // uint8 bins: exact
  const auto draw = on_gpu.draw(8, torch::kCUDA);
  EXPECT_TRUE(draw.x.is_cuda());
  EXPECT_GT(draw.from_buffer.sum().item<int64_t>(), 0);
  // Every drawn buffer row lies in the bin of a stored state.
  const auto stored = on_cpu.states().flatten(1);
  const auto rows = draw.from_buffer.nonzero().squeeze(1);
  const auto drawn = draw.x.cpu().index_select(0, rows).flatten(1);
  const auto nearest = torch::cdist(drawn, stored, 1.0).min(1);
  EXPECT_LE(std::get<0>(nearest).max().item<double>(), 48 * 0.5 / 256 + 1e-6);
  // Checkpoints hold CPU tensors, which a CPU buffer loads.
  torch::serialize::OutputArchive out;
  on_gpu.save(out, "b.");
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  ebm::ReplayBuffer loaded({3, 4, 4}, opts);
  loaded.load(in, "b.");
  EXPECT_TRUE(torch::equal(loaded.states(), on_cpu.states()));
}

TEST(CudaTrainer, GraphedDeviceResidentTrainingMatchesEagerInFp32) {
  if (!HasCuda()) GTEST_SKIP() << "no CUDA device";
  // float32 storage: uint8 draws add dequantisation noise from the storage device's generator,
  // which differs between a CPU and a device-resident buffer.
  const auto opts = SmallTrainer(ebm::BufferStorage::kFloat32);
  auto a_model = SeededModel<TinyConvEnergy>(3);
  auto b_model = SeededModel<TinyConvEnergy>(3);
  ebm::ContrastiveDivergenceTrainer a(a_model, {3, 8, 8}, opts, torch::kCUDA);
  ebm::ContrastiveDivergenceTrainer b(
      b_model, {3, 8, 8},
      ebm::TrainerOptions(opts).performance(
          ebm::PerformanceOptions().cuda_graph(true).buffer_on_device(true).channels_last(true)),
      torch::kCUDA);
  const auto batch = torch::rand({8, 3, 8, 8});
  for (int step = 0; step < 4; ++step) {
    const auto ra = SeededStep(a, batch, 200 + step);
    const auto rb = SeededStep(b, batch, 200 + step);
    EXPECT_NEAR(ra.loss, rb.loss, 1e-3 * (1 + std::abs(ra.loss))) << "step " << step;
  }
  EXPECT_GE(b.sampler().graph_captures(), 1);
  EXPECT_TRUE(b.buffer().storage_device().is_cuda());
}

TEST(CudaTrainer, SpectralNormConditionalNetTrainsGraphedAsEager) {
  if (!HasCuda()) GTEST_SKIP() << "no CUDA device";
  // The image net's spectral norm serves eval-mode forwards from a cache and checks labels on the
  // host: a captured chain must compute the first in the graph and skip the second.
  const auto net = ebm::image_net_preset("small_cnn", 3, 4);
  const auto opts = SmallTrainer(ebm::BufferStorage::kFloat32);
  auto a_model = SeededModel<ebm::ImageEnergyNet>(5, net);
  auto b_model = SeededModel<ebm::ImageEnergyNet>(5, net);
  ebm::ContrastiveDivergenceTrainer a(a_model, {3, 16, 16}, opts, torch::kCUDA);
  ebm::ContrastiveDivergenceTrainer b(
      b_model, {3, 16, 16},
      ebm::TrainerOptions(opts).performance(ebm::PerformanceOptions().cuda_graph(true)),
      torch::kCUDA);
  const auto batch = torch::rand({8, 3, 16, 16});
  const auto labels = torch::arange(8, torch::kLong) % 4;
  for (int step = 0; step < 4; ++step) {  // the weights change between the chains
    const auto ra = SeededStep(a, batch, 300 + step, labels);
    const auto rb = SeededStep(b, batch, 300 + step, labels);
    EXPECT_EQ(ra.loss, rb.loss) << "step " << step;
    EXPECT_TRUE(torch::equal(ra.negatives.x.cpu(), rb.negatives.x.cpu())) << "step " << step;
  }
  EXPECT_EQ(b.sampler().graph_captures(), 1);
}
