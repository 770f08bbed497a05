// Annealed importance sampling against energies whose log Z is known independently: a product of
// truncated Gaussians on the unit box (closed form with erf) and a two-well energy in 2-D (a
// midpoint-rule quadrature on a fine grid).
#include "ebm/eval/ais.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace {

constexpr double kPi = 3.14159265358979323846;

// E(x) = sum_d a (x_d - m_d)^2.
class BoxGaussian : public ebm::EnergyModel {
 public:
  BoxGaussian(double a, torch::Tensor m) : a_(a), m_(std::move(m)) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return a_ * (x.to(torch::kFloat64) - m_).pow(2).flatten(1).sum(1);
  }
  // log of the integral over [0, 1]^D: sum_d log(sqrt(pi / a) / 2 (erf(sqrt(a)(1 - m)) +
  // erf(sqrt(a) m))).
  double log_z() const {
    double total = 0;
    const double r = std::sqrt(a_);
    for (int64_t d = 0; d < m_.numel(); ++d) {
      const double m = m_[d].item<double>();
      total += std::log(std::sqrt(kPi / a_) / 2 * (std::erf(r * (1 - m)) + std::erf(r * m)));
    }
    return total;
  }

 private:
  double a_;
  torch::Tensor m_;
};

// E(x) = -log(exp(-k |x - a|^2) + 0.5 exp(-k |x - b|^2)), two wells of unequal mass in [0, 1]^2.
class TwoWells : public ebm::EnergyModel {
 public:
  static constexpr double kK = 80.0;
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    auto p = x.to(torch::kFloat64).flatten(1);
    auto a = torch::tensor({0.25, 0.3}, torch::kFloat64);
    auto b = torch::tensor({0.75, 0.7}, torch::kFloat64);
    auto ea = -kK * (p - a).pow(2).sum(1);
    auto eb = -kK * (p - b).pow(2).sum(1) + std::log(0.5);
    return -torch::logaddexp(ea, eb);
  }
};

double QuadratureLogZ(ebm::EnergyModel& model, int64_t n) {
  auto grid = (torch::arange(n, torch::kFloat64) + 0.5) / static_cast<double>(n);
  auto xs = grid.repeat_interleave(n), ys = grid.repeat({n});
  auto e = model.energy(torch::stack({xs, ys}, 1), {});
  return (torch::logsumexp(-e, 0) - 2 * std::log(static_cast<double>(n))).item<double>();
}

}  // namespace

TEST(Ais, LogPartitionOfTruncatedGaussiansWithinItsStandardError) {
  torch::manual_seed(0);
  auto m = torch::linspace(0.15, 0.85, 8, torch::kFloat64);
  BoxGaussian model(30.0, m);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto r = ebm::eval::ais_log_partition(
      model, {8}, {}, ebm::eval::AisOptions().chains(200).temperatures(1000).step_size(0.01), gen);
  const double truth = model.log_z();  // about -10.6: the box is far wider than the wells
  EXPECT_LT(truth, -5);
  EXPECT_NEAR(r.log_z, truth, 4 * r.std_error + 0.03)
      << "se " << r.std_error << " acceptance " << r.acceptance;
  std::cout << "log Z " << r.log_z << " +- " << r.std_error << " (truth " << truth
            << "), acceptance " << r.acceptance << ", effective chains " << r.effective_chains
            << "\n";
  EXPECT_LT(r.std_error, 0.1);
  EXPECT_GT(r.acceptance, 0.3);
  EXPECT_GT(r.effective_chains, 50);
}

TEST(Ais, LogPartitionOfTwoWellsMatchesQuadrature) {
  torch::manual_seed(0);
  TwoWells model;
  const double truth = QuadratureLogZ(model, 2000);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto r = ebm::eval::ais_log_partition(
      model, {2}, {}, ebm::eval::AisOptions().chains(400).temperatures(200).step_size(0.005), gen);
  EXPECT_NEAR(r.log_z, truth, 4 * r.std_error + 0.03) << "se " << r.std_error;
  // Without the second well's mass the answer would be off by log(1.5) = 0.41: the estimate sees
  // both wells.
  EXPECT_LT(r.std_error, 0.1);
}

TEST(Ais, NoAnnealingIsPlainImportanceSamplingWithAWideError) {
  // One temperature: the weights are exp(-E) at uniform points; still unbiased for Z, but its
  // standard error is much larger than with annealing. The estimator reports it.
  torch::manual_seed(0);
  BoxGaussian model(30.0, torch::linspace(0.15, 0.85, 8, torch::kFloat64));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto one = ebm::eval::ais_log_partition(
      model, {8}, {}, ebm::eval::AisOptions().chains(200).temperatures(1), gen);
  const auto many = ebm::eval::ais_log_partition(
      model, {8}, {}, ebm::eval::AisOptions().chains(200).temperatures(300).step_size(0.01), gen);
  EXPECT_GT(one.std_error, 3 * many.std_error);
  EXPECT_LT(one.effective_chains, many.effective_chains);
}

TEST(Ais, RejectsBadOptions) {
  BoxGaussian model(1.0, torch::zeros({2}, torch::kFloat64));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  EXPECT_THROW(ebm::eval::ais_log_partition(model, {2}, {}, ebm::eval::AisOptions().chains(1), gen),
               std::invalid_argument);
  EXPECT_THROW(
      ebm::eval::ais_log_partition(model, {2}, {}, ebm::eval::AisOptions().low(1).high(0), gen),
      std::invalid_argument);
}
