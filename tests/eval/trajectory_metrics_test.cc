// Trajectory metrics against values computed by hand on tiny inputs.
#include "ebm/eval/trajectory_metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <vector>

using namespace ebm::eval;

namespace {

// One point moving along x: positions x_t at frames t = 0..T-1.
torch::Tensor Line(std::vector<double> xs, double y = 0) {
  auto t = torch::zeros({static_cast<int64_t>(xs.size()), 1, 3}, torch::kFloat64);
  for (size_t i = 0; i < xs.size(); ++i) {
    t[static_cast<int64_t>(i)][0][0] = xs[i];
    t[static_cast<int64_t>(i)][0][1] = y;
  }
  return t;
}

}  // namespace

TEST(TrajectoryMetrics, DisplacementErrors) {
  const auto a = Line({0, 1, 2}), b = Line({0, 2, 4});
  EXPECT_DOUBLE_EQ(ade(a, b), (0 + 1 + 2) / 3.0);
  EXPECT_DOUBLE_EQ(fde(a, b), 2.0);
  EXPECT_DOUBLE_EQ(error_at(a, b, 2), 1.0);
  EXPECT_THROW(error_at(a, b, 4), std::invalid_argument);
  // Two points: distances averaged over points. Point 2 is offset by (3, 4): distance 5.
  auto two_a = torch::cat({a, a}, 1),
       two_b = torch::cat({a, a + torch::tensor({3.0, 4.0, 0.0}, torch::kFloat64)}, 1);
  EXPECT_DOUBLE_EQ(ade(two_a, two_b), 2.5);
}

TEST(TrajectoryMetrics, BestOfKNearestBranchDiversity) {
  const auto truth = Line({0, 0, 0});
  const auto samples = torch::stack({Line({0, 0, 0}, 3), Line({0, 0, 0}, 1), Line({0, 0, 0}, -2)});
  EXPECT_DOUBLE_EQ(min_ade(samples, truth), 1.0);
  EXPECT_DOUBLE_EQ(min_fde(samples, truth), 1.0);
  // Branches at y = 0 and y = 2.5: nearest distances 0.5, 1, 2 -> mean 7/6.
  const auto branches = torch::stack({Line({0, 0, 0}, 0), Line({0, 0, 0}, 2.5)});
  EXPECT_NEAR(nearest_branch_ade(samples, branches), 3.5 / 3.0, 1e-12);
  // Pairwise distances 2, 5, 3 -> mean 10/3; a single trajectory has none.
  EXPECT_NEAR(diversity(samples), 10.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(diversity(samples.narrow(0, 0, 1)), 0.0);
  EXPECT_DOUBLE_EQ(diversity(torch::stack({truth, truth, truth})), 0.0);
}

TEST(TrajectoryMetrics, EnergyDistanceAndMovement) {
  // Flattened trajectories of 1 frame, 1 point: plain points in R^3.
  auto point = [](double x) {
    return torch::tensor({x, 0.0, 0.0}, torch::kFloat64).view({1, 1, 3});
  };
  const auto x = torch::stack({point(0), point(2)}), y = torch::stack({point(1), point(5)});
  // E|X-Y| = (1 + 5 + 1 + 3) / 4 = 2.5; E|X-X'| = 2; E|Y-Y'| = 4 -> 2 * 2.5 - 2 - 4 = -1.
  EXPECT_NEAR(energy_distance(x, y), -1.0, 1e-12);
  EXPECT_NEAR(energy_distance(x, x), 2 * 1.0 - 2 - 2, 1e-12);  // (0 + 2 + 2 + 0) / 4 = 1
  // Identical singletons: 0; shifted by d: 2d.
  EXPECT_NEAR(energy_distance(torch::stack({point(1)}), torch::stack({point(4)})), 6.0, 1e-12);
  const auto set = torch::stack({Line({0, 1, 3}), Line({0, 1, -1})});
  EXPECT_DOUBLE_EQ(movement(set, torch::zeros({1, 3}, torch::kFloat64)), 2.0);
}
