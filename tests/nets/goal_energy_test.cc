// GoalEnergy against its formula, computed here from the window's raw frames, with its stiffness
// from the Hessian of that formula (second differences: the energy is quadratic); and composed
// with another energy by the core's WeightedSumEnergy and sampled by the one Langevin sampler: a
// larger goal weight takes the chains closer to the goal.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"
#include "ebm/nets/trajectory_nets.h"

namespace {

constexpr int64_t kH = 2, kD = 3;

struct Goal {
  ebm::TrajectoryNetOptions options = ebm::TrajectoryNetOptions(kD, kH, 8).basis(4);
  torch::Tensor mean = torch::tensor({0.5, -1.0, 0.2}), std = torch::tensor({2.0, 1.0, 4.0}),
                delta_std = torch::tensor({0.3, 3.0, 1.5});
  torch::Tensor jacobian =
      torch::tensor({0.1, 0.0, -0.2, 0.05, 0.3, 0.0, 0.0, -0.1, 0.02}, torch::kFloat64)
          .view({3, 3});
  torch::Tensor state = torch::tensor({0.4, -0.8, 1.0}), point = torch::tensor({0.1, 0.2, 0.3}),
                target = torch::tensor({0.15, 0.1, 0.32});
  ebm::GoalEnergy make() const {
    return ebm::GoalEnergy(options, mean, std, delta_std, jacobian, state, point, target);
  }
  // 0.5 |p - target|^2 of one window, from its raw last frame (float64).
  double raw_energy(const torch::Tensor& x, const torch::Tensor& cond) const {
    const auto last = cond[0][kH - 1] * std.to(torch::kFloat64) + mean.to(torch::kFloat64);
    const auto future = ebm::decode_future(x, options)[0] * delta_std.to(torch::kFloat64) + last;
    const auto p =
        point.to(torch::kFloat64) +
        torch::matmul(jacobian, future[options.future() - 1] - state.to(torch::kFloat64));
    return 0.5 * (p - target.to(torch::kFloat64)).pow(2).sum().item<double>();
  }
};

// A stand-in for a learned energy: 0.5 |x - centre|^2.
class Quadratic : public ebm::EnergyModel {
 public:
  explicit Quadratic(torch::Tensor centre) : centre_(std::move(centre)) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return 0.5 * (x - centre_).pow(2).flatten(1).sum(1);
  }

 private:
  torch::Tensor centre_;
};

}  // namespace

TEST(GoalEnergy, MatchesItsFormulaAndStiffness) {
  const Goal g;
  auto goal = g.make();
  const int64_t latent = g.options.latent_frames(), n = latent * kD;
  const auto cond =
      torch::tensor({0.3, -0.2, 0.5, 0.1, 0.4, -0.6}, torch::kFloat64).view({1, kH, kD});
  auto energy_of = [&](const torch::Tensor& flat) {
    return g.raw_energy(flat.view({1, latent, kD}), cond);
  };
  const auto eye = torch::eye(n, torch::kFloat64);
  const double e0 = energy_of(torch::zeros({n}, torch::kFloat64));
  auto hessian = torch::zeros({n, n}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j)
      hessian[i][j] = energy_of(eye[i] + eye[j]) - energy_of(eye[i]) - energy_of(eye[j]) + e0;
  }
  const double lambda = torch::linalg_eigvalsh(hessian).max().item<double>();
  EXPECT_NEAR(goal->stiffness() / lambda, 1.0, 1e-4);
  torch::manual_seed(1);
  for (int r = 0; r < 4; ++r) {
    const auto x = torch::randn({1, latent, kD}, torch::kFloat64);
    const double expected = g.raw_energy(x, cond) / lambda;
    const double got = goal->energy(x.to(torch::kFloat32), cond.to(torch::kFloat32)).item<double>();
    EXPECT_NEAR(got, expected, 1e-4 * std::max(1.0, expected));
  }
}

TEST(GoalEnergy, LargerWeightSamplesCloserToTheGoal) {
  const Goal g;
  auto goal = g.make();
  torch::manual_seed(2);
  const int64_t latent = g.options.latent_frames();
  const auto cond = torch::randn({8, kH, kD});
  auto prior = std::make_shared<Quadratic>(torch::randn({1, latent, kD}));
  const ebm::LangevinSampler sampler(ebm::LangevinOptions()
                                         .steps(300)
                                         .step_size(0.5)
                                         .noise_std(0.0)
                                         .clip_mode(ebm::GradClip::kNone)
                                         .clamp_min(std::nullopt)
                                         .clamp_max(std::nullopt));
  std::vector<double> distance;
  // Stable while step_size x (1 + w) < 2: the prior's curvature is 1, the goal's at most w.
  for (double w : {0.0, 0.2, 1.0, 2.5}) {
    ebm::WeightedSumEnergy sum;
    sum.add(prior, 1.0);
    sum.add(goal.ptr(), w);
    const auto x = sampler.sample(sum, torch::zeros({8, latent, kD}), cond);
    distance.push_back(
        (goal->position(x, cond) - g.target.to(torch::kFloat32)).norm(2, 1).mean().item<double>());
  }
  for (size_t i = 1; i < distance.size(); ++i)
    EXPECT_LT(distance[i], distance[i - 1]) << "weight index " << i;
  // The pull is w / (1 + w) of the way along the stiffest direction, less along the others.
  EXPECT_LT(distance.back(), 0.75 * distance.front());
}

TEST(GoalEnergy, RefusesAGoalThatCannotMove) {
  const Goal g;
  EXPECT_THROW(ebm::GoalEnergy(g.options, g.mean, g.std, g.delta_std, torch::zeros({3, kD}),
                               g.state, g.point, g.target),
               std::invalid_argument);
  EXPECT_THROW(ebm::GoalEnergy(g.options, g.mean, g.std, g.delta_std, g.jacobian, g.state, g.point,
                               torch::tensor({0.0, std::nan(""), 0.0})),
               std::invalid_argument);
  EXPECT_THROW(ebm::GoalEnergy(g.options, g.mean, g.std, g.delta_std, torch::ones({2, kD}), g.state,
                               g.point, g.target),
               std::invalid_argument);
}
