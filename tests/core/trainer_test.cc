// Contrastive-divergence training end to end on a 2-D mixture of 8 Gaussians, bit-identical
// resume, and the non-finite guard.
#include "ebm/core/trainer.h"

#include <gtest/gtest.h>
#include <time.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

namespace {

constexpr double kPi = 3.14159265358979323846;

class MlpEnergy : public ebm::EnergyModel {
 public:
  explicit MlpEnergy(int64_t hidden = 128) {
    net_ = register_module(
        "net", torch::nn::Sequential(torch::nn::Linear(2, hidden), torch::nn::SiLU(),
                                     torch::nn::Linear(hidden, hidden), torch::nn::SiLU(),
                                     torch::nn::Linear(hidden, 1)));
  }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return net_->forward(x).squeeze(1);
  }

 private:
  torch::nn::Sequential net_{nullptr};
};

torch::Tensor Modes() {
  auto angles = torch::arange(8, torch::kFloat32) * (2 * kPi / 8);
  return torch::stack({torch::cos(angles), torch::sin(angles)}, 1) * 2.0;
}

torch::Tensor MixtureBatch(int64_t n) {
  auto idx = torch::randint(8, {n}, torch::kLong);
  return Modes().index_select(0, idx) + torch::randn({n, 2}) * 0.1;
}

ebm::TrainerOptions MixtureOptions() {
  return ebm::TrainerOptions()
      .dequantize(false)
      .l2_coeff(0.1)
      .adam(ebm::AdamOptions().lr(3e-3).beta1(0.0).beta2(0.999))
      .buffer(ebm::ReplayBufferOptions().capacity(10000).init_low(-3).init_high(3))
      .langevin(ebm::LangevinOptions()
                    .steps(30)
                    .step_size(0.05)
                    .noise_std(0.05)
                    .clip_mode(ebm::GradClip::kL2)
                    .grad_clip(5.0)
                    .clamp_min(-3.0)
                    .clamp_max(3.0));
}

}  // namespace

TEST(Trainer, CoversEveryModeOfAMixtureOf8Gaussians) {
  torch::set_num_threads(1);
  torch::manual_seed(0);
  auto model = std::make_shared<MlpEnergy>();
  ebm::ContrastiveDivergenceTrainer trainer(model, {2}, MixtureOptions());
  ebm::TrainStepResult r;
  for (int i = 0; i < 3000; ++i) r = trainer.step(MixtureBatch(128));
  EXPECT_TRUE(std::isfinite(r.loss));
  // The model's samples: the persistent chains of the replay buffer. Every mode holds >= 5%.
  auto b = trainer.buffer().states();
  auto [bd, bn] = torch::cdist(b, Modes()).min(1);
  const double buffer_near = (bd < 0.5).to(torch::kFloat32).mean().item<double>();
  auto shares = torch::bincount(bn.masked_select(bd < 0.5), {}, 8).to(torch::kFloat64) / b.size(0);
  EXPECT_GT(buffer_near, 0.95) << "persistent samples far from every mode";
  for (int k = 0; k < 8; ++k) {
    EXPECT_GE(shares[k].item<double>(), 0.05) << "mode " << k << " holds too few samples";
  }
  // Fresh chains from uniform noise, run longer than in training.
  ebm::LangevinSampler long_chains(ebm::LangevinOptions(trainer.sampler().options()).steps(200));
  auto x0 = torch::rand({2000, 2}) * 6 - 3;
  model->eval();
  auto x = long_chains.sample(*model, x0);
  auto d = torch::cdist(x, Modes());  // [2000, 8]
  auto [dist, nearest] = d.min(1);
  auto near = dist < 0.5;
  const double near_frac = near.to(torch::kFloat32).mean().item<double>();
  // Fresh short-run chains do not mix between modes: their shares follow the basins' areas, so
  // for them the test asks that they land on modes and that every mode is reached.
  EXPECT_GT(near_frac, 0.95) << "fresh chains end far from every mode";
  auto counts = torch::bincount(nearest.masked_select(near), {}, 8).to(torch::kFloat64) / 2000.0;
  for (int k = 0; k < 8; ++k) {
    EXPECT_GE(counts[k].item<double>(), 0.02) << "fresh chains never reach mode " << k;
  }
  std::cout << "mixture: persistent chains " << buffer_near * 100 << "% near a mode, least-held "
            << shares.min().item<double>() * 100 << "%; fresh chains " << near_frac * 100
            << "% near, least-held " << counts.min().item<double>() * 100 << "%\n";
}

namespace {

// Train `steps` iterations from a fixed seed, optionally through a checkpoint round trip after
// `split` steps, and return the final weights, buffer and a fresh random draw.
std::vector<torch::Tensor> TrainAndFingerprint(int steps, int split) {
  torch::manual_seed(42);
  auto opts = MixtureOptions().langevin(MixtureOptions().langevin().steps(5)).ema_decay(0.9);
  auto model = std::make_shared<MlpEnergy>(16);
  auto trainer =
      std::make_unique<ebm::ContrastiveDivergenceTrainer>(model, std::vector<int64_t>{2}, opts);
  for (int i = 0; i < steps; ++i) {
    if (i == split) {
      torch::serialize::OutputArchive out;
      trainer->save(out);
      std::ostringstream bytes;
      out.save_to(bytes);
      // A new process: other weights, other RNG state, an empty buffer.
      torch::manual_seed(999);
      model = std::make_shared<MlpEnergy>(16);
      trainer =
          std::make_unique<ebm::ContrastiveDivergenceTrainer>(model, std::vector<int64_t>{2}, opts);
      torch::serialize::InputArchive in;
      std::istringstream read(bytes.str());
      in.load_from(read);
      trainer->load(in);
      EXPECT_EQ(trainer->steps(), split);
    }
    trainer->step(MixtureBatch(32));
  }
  std::vector<torch::Tensor> out;
  for (auto& p : model->parameters()) out.push_back(p.detach().clone());
  out.push_back(trainer->buffer().states());
  trainer->swap_ema();
  for (auto& p : model->parameters()) out.push_back(p.detach().clone());
  out.push_back(torch::rand({4}));
  return out;
}

// An energy that returns NaN for its first `bad` calls in training mode.
class FlakyEnergy : public MlpEnergy {
 public:
  explicit FlakyEnergy(int bad) : MlpEnergy(8), bad_(bad) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& c) override {
    auto e = MlpEnergy::energy(x, c);
    if (is_training() && calls_++ < bad_) return e * std::nan("");
    return e;
  }

 private:
  int bad_, calls_ = 0;
};

}  // namespace

TEST(Trainer, ResumeIsBitIdenticalToTrainingStraight) {
  auto straight = TrainAndFingerprint(12, -1);
  auto resumed = TrainAndFingerprint(12, 7);
  ASSERT_EQ(straight.size(), resumed.size());
  for (size_t i = 0; i < straight.size(); ++i) {
    EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << "tensor " << i << " differs";
  }
  // And the fingerprint does depend on the training: fewer steps differ.
  auto shorter = TrainAndFingerprint(11, -1);
  EXPECT_FALSE(torch::equal(straight[0], shorter[0]));
}

TEST(Trainer, NonFiniteGuardSkipsRestoresAndFinallyStops) {
  torch::manual_seed(3);
  auto opts = MixtureOptions()
                  .langevin(MixtureOptions().langevin().steps(2))
                  .max_bad_steps(2)
                  .max_restores(1);
  auto model = std::make_shared<FlakyEnergy>(3);
  ebm::ContrastiveDivergenceTrainer trainer(model, {2}, opts);
  std::vector<std::string> warnings;
  trainer.set_warning_sink([&](const std::string& w) { warnings.push_back(w); });
  auto before = model->parameters()[0].detach().clone();
  auto r1 = trainer.step(MixtureBatch(16));
  EXPECT_TRUE(r1.skipped);
  EXPECT_FALSE(r1.restored);
  EXPECT_TRUE(torch::equal(model->parameters()[0], before)) << "a skipped step changed weights";
  auto r2 = trainer.step(MixtureBatch(16));
  EXPECT_TRUE(r2.skipped && r2.restored);
  EXPECT_DOUBLE_EQ(trainer.sampler().options().step_size(), 0.025);  // halved
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("non-finite"), std::string::npos);
  auto r3 = trainer.step(MixtureBatch(16));  // third NaN: bad streak 1 of 2
  EXPECT_TRUE(r3.skipped);
  auto r4 = trainer.step(MixtureBatch(16));  // healthy again
  EXPECT_FALSE(r4.skipped);
  EXPECT_FALSE(torch::equal(model->parameters()[0], before));

  // Always NaN: one restoration allowed, then a clear stop.
  auto hopeless = std::make_shared<FlakyEnergy>(1 << 30);
  ebm::ContrastiveDivergenceTrainer doomed(hopeless, {2}, opts);
  doomed.set_warning_sink([](const std::string&) {});
  try {
    for (int i = 0; i < 10; ++i) doomed.step(MixtureBatch(16));
    FAIL() << "expected TrainingDiverged";
  } catch (const ebm::TrainingDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos);
  }
}

namespace {

// E(x | c) = a |x - c|^2 for x, c of shape [B, 2]; records the conditions of every call.
class PairEnergy : public ebm::EnergyModel {
 public:
  PairEnergy() { a_ = register_parameter("a", torch::ones({1})); }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& c) override {
    calls.push_back(c.detach().clone());
    return a_ * (x - c).pow(2).sum(1);
  }
  std::vector<torch::Tensor> calls;

 private:
  torch::Tensor a_;
};

ebm::TrainerOptions PairOptions() {
  return ebm::TrainerOptions()
      .dequantize(false)
      .l2_coeff(0.0)
      .buffer(ebm::ReplayBufferOptions().capacity(100).reinit_prob(0.0))
      .langevin(ebm::LangevinOptions().steps(1).step_size(0.01).noise_std(0.0));
}

}  // namespace

// Negatives are sampled under the conditions stored in the buffer (the default, IGEBM's labelled
// buffer) or, with negative_condition = batch, under the batch's own.
TEST(Trainer, NegativeConditionChoosesTheSamplersCondition) {
  for (auto mode : {ebm::NegativeCondition::kBuffer, ebm::NegativeCondition::kBatch}) {
    torch::manual_seed(0);
    auto model = std::make_shared<PairEnergy>();
    ebm::ContrastiveDivergenceTrainer t(model, {2}, PairOptions().negative_condition(mode));
    const auto old_labels = torch::arange(8, torch::kFloat32).view({4, 2});
    for (int i = 0; i < 3; ++i) t.step(torch::zeros({4, 2}), old_labels);  // buffer: 12 > 4 states
    const auto new_labels = torch::full({4, 2}, 100.0f);
    model->calls.clear();
    t.step(torch::zeros({4, 2}), new_labels);
    ASSERT_GE(model->calls.size(), 2u);
    const auto& sampled_under = model->calls.front();  // the sampler's first energy call
    if (mode == ebm::NegativeCondition::kBatch) {
      EXPECT_TRUE(torch::equal(sampled_under, new_labels));
    } else {
      EXPECT_LT(sampled_under.max().item<float>(), 8.0f);  // rows of the old labels
    }
    // The loss's forward sees the positives under the batch's conditions, the negatives under
    // the ones they were sampled with.
    const auto& loss_call = model->calls.back();
    EXPECT_TRUE(torch::equal(loss_call.narrow(0, 0, 4), new_labels));
    EXPECT_TRUE(torch::equal(loss_call.narrow(0, 4, 4), sampled_under));
  }
}

// mismatch_weight adds w * mean softplus(E(x_i | c_i) - E(x_(i+1) | c_i)) to the objective:
// checked against the same sum computed here from the model's known energy.
TEST(Trainer, MismatchTermMatchesItsFormula) {
  torch::manual_seed(1);
  const double w = 0.7;
  auto model = std::make_shared<PairEnergy>();
  ebm::ContrastiveDivergenceTrainer t(model, {2}, PairOptions().mismatch_weight(w));
  const auto x = torch::randn({5, 2}), c = x + 0.1 * torch::randn({5, 2});
  const auto r = t.step(x, c);
  const auto e_match = (x - c).pow(2).sum(1);
  const auto e_mismatch = (x.roll(-1, 0) - c).pow(2).sum(1);
  const double expected =
      r.e_pos - r.e_neg + w * torch::softplus(e_match - e_mismatch).mean().item<double>();
  EXPECT_NEAR(r.ml_loss, expected, 1e-5);
  EXPECT_NEAR(r.e_pos, e_match.mean().item<double>(), 1e-5);
  // Off by default: the objective is then E+ - E- alone.
  auto plain_model = std::make_shared<PairEnergy>();
  ebm::ContrastiveDivergenceTrainer plain(plain_model, {2}, PairOptions());
  const auto rp = plain.step(x, c);
  EXPECT_NEAR(rp.ml_loss, rp.e_pos - rp.e_neg, 1e-6);
  EXPECT_EQ(plain_model->calls.back().size(0), 10);  // positives + negatives, no third block
  EXPECT_EQ(model->calls.back().size(0), 15);
}

// What TensorBoard shows: the batch's energies before the update, and, only when asked, the mean
// norm of the energy's gradient at the last Langevin step. With one noiseless, unclipped step of
// size eta on E = |x - c|^2, the chain's start is recovered from its end: x_end - c = (1 - 2 eta)
// (x_start - c), so the gradient 2 (x_start - c) is 2 (x_end - c) / (1 - 2 eta).
TEST(Trainer, DiagnosticsReportEnergiesAndTheLangevinGradient) {
  torch::manual_seed(2);
  const double eta = 0.01;
  auto model = std::make_shared<PairEnergy>();
  auto options = PairOptions().negative_condition(ebm::NegativeCondition::kBatch);
  options.langevin(ebm::LangevinOptions()
                       .steps(1)
                       .step_size(eta)
                       .noise_std(0.0)
                       .clip_mode(ebm::GradClip::kNone)
                       .clamp_min(std::nullopt)
                       .clamp_max(std::nullopt));
  ebm::ContrastiveDivergenceTrainer t(model, {2}, options);
  const auto x = torch::randn({6, 2}), c = torch::randn({6, 2});
  t.diagnose_next_step();
  const auto r = t.step(x, c);
  const auto& neg = r.negatives;
  EXPECT_TRUE(torch::allclose(r.energies_pos, (x - c).pow(2).sum(1), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(r.energies_neg, (neg.x - neg.condition).pow(2).sum(1), 1e-5, 1e-6));
  const auto grad = 2 * (neg.x - neg.condition) / (1 - 2 * eta);
  EXPECT_NEAR(r.langevin_grad_norm, grad.norm(2, 1).mean().item<double>(), 1e-4);
  EXPECT_EQ(t.step(x, c).langevin_grad_norm, -1);  // only the step after diagnose_next_step()
}
