// The Langevin sampler against known distributions and exact invariants.
#include "ebm/core/langevin.h"

#include <gtest/gtest.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "ebm/core/energy.h"

namespace {

// E(x) = sum_d (x_d - mu)^2 / (2 sigma^2): the Boltzmann density exp(-E) is N(mu, sigma^2).
class GaussianEnergy : public ebm::EnergyModel {
 public:
  GaussianEnergy(double mu, double sigma) : mu_(mu), sigma_(sigma) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return (x - mu_).pow(2).flatten(1).sum(1) / (2 * sigma_ * sigma_);
  }

 private:
  double mu_, sigma_;
};

// Unadjusted Langevin for exp(-E): step eta on the gradient, noise std sqrt(2 eta).
ebm::LangevinOptions Unadjusted(double eta, int64_t steps) {
  return ebm::LangevinOptions()
      .steps(steps)
      .step_size(eta)
      .noise_std(std::sqrt(2 * eta))
      .clip_mode(ebm::GradClip::kNone)
      .clamp_min(std::nullopt)
      .clamp_max(std::nullopt);
}

}  // namespace

TEST(Langevin, SamplesFollowAGaussianEnergy) {
  torch::manual_seed(0);
  const double mu = 1.5, sigma = 0.5;
  GaussianEnergy energy(mu, sigma);
  const int64_t n = 4000;
  auto x0 = torch::rand({n, 2}) * 4 - 2;
  // eta / sigma^2 = 0.02: the stationary variance of this discretisation is
  // sigma^2 (1 - h)^2 / (1 - h / 2) with h = 0.02, i.e. 0.985 sigma^2.
  auto x = ebm::LangevinSampler(Unadjusted(0.005, 600)).sample(energy, x0);
  const double mean = x.mean().item<double>();
  const double var = x.var().item<double>();
  const double se_mean = sigma / std::sqrt(2.0 * n);
  EXPECT_NEAR(mean, mu, 5 * se_mean);
  EXPECT_NEAR(var / (sigma * sigma), 0.985, 0.05);
}

TEST(Langevin, WeightedSumIsAProductOfExperts) {
  // N(0, 1) x N(2, 1) is N(1, 1/2): the sum of the two energies samples the product.
  torch::manual_seed(1);
  ebm::WeightedSumEnergy sum;
  sum.add(std::make_shared<GaussianEnergy>(0.0, 1.0))
      .add(std::make_shared<GaussianEnergy>(2.0, 1.0));
  auto x = ebm::LangevinSampler(Unadjusted(0.01, 500)).sample(sum, torch::zeros({4000, 1}));
  EXPECT_NEAR(x.mean().item<double>(), 1.0, 0.05);
  EXPECT_NEAR(x.var().item<double>(), 0.5, 0.05);
}

TEST(Langevin, MaskLeavesMaskedOutEntriesBitIdentical) {
  torch::manual_seed(2);
  GaussianEnergy energy(0.5, 0.1);
  auto x0 = torch::rand({8, 3, 4, 4});
  auto mask = torch::zeros({8, 1, 4, 4}, torch::kBool);
  mask.index_put_(
      {torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(0, 2)}, true);
  auto opts = ebm::LangevinOptions().steps(20).step_size(0.01).noise_std(0.01);
  auto x = ebm::LangevinSampler(opts).sample(energy, x0, {}, mask);
  auto keep = mask.logical_not().expand_as(x0);
  EXPECT_TRUE(torch::equal(x.masked_select(keep), x0.masked_select(keep)));
  EXPECT_FALSE(
      torch::equal(x.masked_select(keep.logical_not()), x0.masked_select(keep.logical_not())));
}

TEST(Langevin, ElementwiseAndL2ClipsBoundEachStep) {
  GaussianEnergy steep(100.0, 0.01);  // huge gradients
  auto x0 = torch::zeros({4, 10});
  auto base = ebm::LangevinOptions()
                  .steps(1)
                  .step_size(2.0)
                  .noise_std(0.0)
                  .clamp_min(std::nullopt)
                  .clamp_max(std::nullopt);
  auto xe = ebm::LangevinSampler(base.clip_mode(ebm::GradClip::kElementwise).grad_clip(0.01))
                .sample(steep, x0);
  EXPECT_TRUE(torch::allclose(xe, torch::full_like(x0, 0.02)));  // each entry moved by 2 * 0.01
  auto xl =
      ebm::LangevinSampler(base.clip_mode(ebm::GradClip::kL2).grad_clip(0.5)).sample(steep, x0);
  auto norms = xl.norm(2, 1);
  EXPECT_TRUE(torch::allclose(norms, torch::full({4}, 1.0), 1e-5, 1e-5));  // 2 * 0.5
}

TEST(Langevin, ClampKeepsTheBox) {
  GaussianEnergy far(5.0, 0.1);
  auto x = ebm::LangevinSampler(ebm::LangevinOptions().steps(30).step_size(10).grad_clip(0.05))
               .sample(far, torch::rand({16, 5}));
  EXPECT_LE(x.max().item<float>(), 1.0f);
  EXPECT_GE(x.min().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(x.max().item<float>(), 1.0f);  // pushed against the upper wall
}

TEST(Langevin, CallbackReportsEveryStepAndNoGraphSurvives) {
  GaussianEnergy energy(0.0, 1.0);
  auto x0 = torch::ones({3, 2});
  std::vector<ebm::LangevinStepStats> seen;
  auto opts = ebm::LangevinOptions()
                  .steps(5)
                  .step_size(0.1)
                  .noise_std(0)
                  .clip_mode(ebm::GradClip::kNone)
                  .clamp_min(std::nullopt)
                  .clamp_max(std::nullopt);
  auto x = ebm::LangevinSampler(opts).sample(energy, x0, {}, {},
                                             [&](const auto& s) { seen.push_back(s); });
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_DOUBLE_EQ(seen[0].mean_energy, 1.0);  // E(1, 1) = 1
  EXPECT_NEAR(seen[0].grad_norm, std::sqrt(2.0), 1e-6);
  // Deterministic gradient descent on a quadratic: x_k = (1 - eta)^k x0.
  EXPECT_TRUE(torch::allclose(x, x0 * std::pow(0.9, 5)));
  EXPECT_FALSE(x.requires_grad());
  EXPECT_FALSE(x.grad_fn());
}

TEST(Langevin, SchedulesAndBadOptions) {
  ebm::LangevinSampler lin(ebm::LangevinOptions()
                               .steps(11)
                               .step_size(1.0)
                               .schedule(ebm::StepSchedule::kLinear)
                               .final_step_ratio(0.1));
  EXPECT_DOUBLE_EQ(lin.step_size_at(0), 1.0);
  EXPECT_NEAR(lin.step_size_at(10), 0.1, 1e-12);
  EXPECT_NEAR(lin.step_size_at(5), 0.55, 1e-12);
  EXPECT_THROW(ebm::LangevinSampler(ebm::LangevinOptions().steps(-1)), std::invalid_argument);
  EXPECT_THROW(ebm::LangevinSampler(ebm::LangevinOptions().grad_clip(0)), std::invalid_argument);
  GaussianEnergy energy(0, 1);
  EXPECT_THROW(ebm::LangevinSampler().sample(energy, torch::zeros({2, 3}), {}, torch::ones({5})),
               std::invalid_argument);
}

// Options archive themselves with enums by name; files of the first generation stored the enum's
// number (still read), and a value no enum has is refused by key.
TEST(Langevin, OptionsSaveAndLoadThemselves) {
  const auto o = ebm::LangevinOptions()
                     .steps(7)
                     .clip_mode(ebm::GradClip::kL2)
                     .schedule(ebm::StepSchedule::kCosine)
                     .clamp_min(std::nullopt)
                     .clamp_max(2.0);
  torch::serialize::OutputArchive out;
  o.save(out, "l.");
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  const auto back = ebm::LangevinOptions::load(in, "l.");
  EXPECT_EQ(back.steps(), 7);
  EXPECT_EQ(back.clip_mode(), ebm::GradClip::kL2);
  EXPECT_EQ(back.schedule(), ebm::StepSchedule::kCosine);
  EXPECT_FALSE(back.clamp_min().has_value());
  EXPECT_EQ(back.clamp_max(), 2.0);
  auto archive = [](const c10::IValue& clip_mode) {
    torch::serialize::OutputArchive a;
    a.write("l.clip_mode", clip_mode);
    std::stringstream s;
    a.save_to(s);
    torch::serialize::InputArchive r;
    r.load_from(s);
    return ebm::LangevinOptions::load(r, "l.");
  };
  EXPECT_EQ(archive(c10::IValue(int64_t{2})).clip_mode(), ebm::GradClip::kL2);  // the old way
  EXPECT_THROW(archive(c10::IValue(int64_t{7})), std::runtime_error);
  EXPECT_THROW(archive(c10::IValue(std::string("l3"))), std::runtime_error);
}
