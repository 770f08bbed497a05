// Trajectory nets' helpers: chaining windows into long futures, and the hand-written experts
// composed with the learned energy (joint limits, position-velocity consistency), checked against
// their formulas computed independently, and their round trip through a generator file.
#include "ebm/nets/trajectory_nets.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/core/langevin.h"
#include "ebm/nets/trajectory_generator.h"
#include "tests/support/temp_dir.h"

namespace {

// Window of H = 2 history and F = 3 future frames of D = 3 features: joint position (col 0), a
// feature without velocity (col 1), joint velocity (col 2). Frame interval 0.5 s.
constexpr int64_t kH = 2, kF = 3, kD = 3;
constexpr double kDt = 0.5;

ebm::TrajectoryNetOptions Opts() { return ebm::TrajectoryNetOptions(kD, kH, kF); }

// Raw frames [1, 1 + F, D] -> the models' variables (normalised history, future displacements
// from the last history frame in units of delta_std; no basis).
struct Encoded {
  torch::Tensor x, cond;
};
Encoded Encode(const torch::Tensor& last_and_future, const torch::Tensor& mean,
               const torch::Tensor& std, const torch::Tensor& delta_std) {
  const auto last = last_and_future.narrow(1, 0, 1);
  auto history = torch::cat({last - 0.25, last}, 1);  // the first history frame does not matter
  return {(last_and_future.narrow(1, 1, kF) - last) / delta_std, (history - mean) / std};
}

}  // namespace

TEST(TrajectoryExperts, KinematicResidualByHand) {
  // q: 0, 1, 3; v: 2, 2, 6 with dt 0.5 -> (1 - 0) / 0.5 - (2 + 2) / 2 = 0,
  // (3 - 1) / 0.5 - (2 + 6) / 2 = 0; then v[2] = 2 -> 4 - 2 = 2.
  auto f =
      torch::tensor({0.0, 9.0, 2.0, 1.0, 9.0, 2.0, 3.0, 9.0, 6.0}, torch::kFloat64).view({1, 3, 3});
  const auto pos = torch::tensor({0}, torch::kLong), vel = torch::tensor({2}, torch::kLong);
  auto r = ebm::kinematic_residual(f, pos, vel, kDt);
  ASSERT_EQ(r.sizes(), torch::IntArrayRef({1, 2, 1}));
  EXPECT_DOUBLE_EQ(r[0][0][0].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(r[0][1][0].item<double>(), 0.0);
  f[0][2][2] = 2.0;
  r = ebm::kinematic_residual(f, pos, vel, kDt);
  EXPECT_DOUBLE_EQ(r[0][1][0].item<double>(), 2.0);
  EXPECT_THROW(ebm::kinematic_residual(f.narrow(1, 0, 1), pos, vel, kDt), std::invalid_argument);
  EXPECT_THROW(ebm::kinematic_residual(f, pos, torch::tensor({1, 2}), kDt), std::invalid_argument);
  EXPECT_THROW(ebm::kinematic_residual(f, pos, vel, 0.0), std::invalid_argument);
}

TEST(TrajectoryExperts, KinematicEnergyIsZeroOnConsistentMotionAndMatchesItsFormula) {
  const auto mean = torch::tensor({0.5f, -1.0f, 0.2f}), std = torch::tensor({2.0f, 1.0f, 4.0f});
  const auto delta_std = torch::tensor({0.5f, 3.0f, 1.5f});
  const auto scale = torch::tensor({0.25f});
  ebm::KinematicEnergy expert(Opts(), mean, std, delta_std, torch::tensor({0}), torch::tensor({2}),
                              scale, kDt);
  // Constant acceleration a = 2: q = t^2, v = 2t at t = 0, 0.5, 1, 1.5; the trapezoid rule is
  // exact.
  auto consistent = torch::zeros({1, 1 + kF, kD});
  for (int64_t i = 0; i <= kF; ++i) {
    const double t = kDt * static_cast<double>(i);
    consistent[0][i][0] = t * t;
    consistent[0][i][1] = 7.0 * static_cast<double>(i);  // not a joint with a velocity: ignored
    consistent[0][i][2] = 2.0 * t;
  }
  auto e = Encode(consistent, mean, std, delta_std);
  EXPECT_NEAR(expert->energy(e.x, e.cond)[0].item<double>(), 0.0, 1e-9);
  // Random frames: 0.5 sum of squared residuals / scale^2 over the F transitions, by loops,
  // divided by the stiffness (checked on its own below).
  torch::manual_seed(3);
  const auto raw = torch::randn({1, 1 + kF, kD}, torch::kFloat64);
  double want = 0;
  for (int64_t i = 1; i <= kF; ++i) {
    const double fd = (raw[0][i][0].item<double>() - raw[0][i - 1][0].item<double>()) / kDt;
    const double mid = 0.5 * (raw[0][i][2].item<double>() + raw[0][i - 1][2].item<double>());
    want += 0.5 * std::pow((fd - mid) / 0.25, 2);
  }
  e = Encode(raw.to(torch::kFloat32), mean, std, delta_std);
  EXPECT_NEAR(expert->energy(e.x, e.cond)[0].item<double>() * expert->stiffness(), want,
              1e-4 * want);
  // Bad construction: a column outside the window, mismatched lists, a zero scale.
  EXPECT_THROW(ebm::KinematicEnergy(Opts(), mean, std, delta_std, torch::tensor({3}),
                                    torch::tensor({2}), scale, kDt),
               std::invalid_argument);
  EXPECT_THROW(ebm::KinematicEnergy(Opts(), mean, std, delta_std, torch::tensor({0, 1}),
                                    torch::tensor({2}), scale, kDt),
               std::invalid_argument);
  EXPECT_THROW(ebm::KinematicEnergy(Opts(), mean, std, delta_std, torch::tensor({0}),
                                    torch::tensor({2}), torch::tensor({0.0f}), kDt),
               std::invalid_argument);
}

TEST(TrajectoryExperts, KinematicEnergyHessianHasNormOne) {
  // With a smooth basis, as the trajectory configs use it. The energy is quadratic in x, so its
  // Hessian is exact from second differences: H_ij = E(a_i + a_j) - E(a_i) - E(a_j) + E(0) with
  // a_i = e_i (unit steps). Its largest eigenvalue must be 1 after the expert's normalisation.
  const auto o = ebm::TrajectoryNetOptions(kD, kH, 8).basis(4);
  const auto mean = torch::tensor({0.5f, -1.0f, 0.2f}), std = torch::tensor({2.0f, 1.0f, 4.0f});
  const auto delta_std = torch::tensor({0.3f, 3.0f, 1.5f});
  ebm::KinematicEnergy expert(o, mean, std, delta_std, torch::tensor({0}), torch::tensor({2}),
                              torch::tensor({0.1f}), 0.04);
  EXPECT_GT(expert->stiffness(), 1.0);  // unnormalised, the expert is stiff
  const int64_t n = o.latent_frames() * kD;
  auto energy_of = [&](const torch::Tensor& flat) {  // [n] float64 -> E
    return expert
        ->energy(flat.to(torch::kFloat64).view({1, o.latent_frames(), kD}),
                 torch::zeros({1, kH, kD}, torch::kFloat64))
        .item<double>();
  };
  const auto eye = torch::eye(n, torch::kFloat64);
  const double e0 = energy_of(torch::zeros({n}, torch::kFloat64));
  auto hessian = torch::zeros({n, n}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      hessian[i][j] = energy_of(eye[i] + eye[j]) - energy_of(eye[i]) - energy_of(eye[j]) + e0;
    }
  }
  EXPECT_NEAR(torch::linalg_eigvalsh(hessian).max().item<double>(), 1.0, 1e-6);
}

TEST(TrajectoryExperts, KinematicExpertPullsLangevinChainsToConsistentMotion) {
  // Gradient descent (no noise) on the expert alone from random futures: the residuals shrink.
  const auto mean = torch::zeros({kD}), std = torch::ones({kD}), delta_std = torch::ones({kD});
  const auto pos = torch::tensor({0}), vel = torch::tensor({2});
  auto expert = std::make_shared<ebm::KinematicEnergyImpl>(Opts(), mean, std, delta_std, pos, vel,
                                                           torch::tensor({1.0f}), kDt);
  torch::manual_seed(4);
  const auto cond = torch::randn({16, kH, kD});
  const auto x0 = torch::randn({16, kF, kD});
  ebm::LangevinSampler sampler(ebm::LangevinOptions()
                                   .steps(200)
                                   .step_size(1.0)
                                   .noise_std(0.0)
                                   .clip_mode(ebm::GradClip::kNone)
                                   .clamp_min(std::nullopt)
                                   .clamp_max(std::nullopt));
  const auto x = sampler.sample(*expert, x0, cond);
  const double before = expert->energy(x0, cond).mean().item<double>();
  const double after = expert->energy(x, cond).mean().item<double>();
  EXPECT_LT(after, 0.01 * before) << before << " -> " << after;
}

TEST(TrajectoryExperts, StateLimitEnergyPenalisesOnlyTheExcess) {
  const auto mean = torch::zeros({kD}), std = torch::tensor({1.0f, 1.0f, 2.0f}),
             delta_std = torch::ones({kD});
  const float inf = std::numeric_limits<float>::infinity();
  ebm::StateLimitEnergy expert(Opts(), mean, std, delta_std, torch::tensor({-1.0f, -inf, -inf}),
                               torch::tensor({1.0f, inf, 3.0f}));
  auto raw = torch::zeros({1, 1 + kF, kD});
  raw[0][1][0] = 0.9;   // inside
  raw[0][2][0] = 1.5;   // 0.5 above
  raw[0][3][0] = -2.0;  // 1 below
  raw[0][3][1] = 100;   // no limits
  raw[0][2][2] = 4.0;   // 1 above, std 2
  const auto e = Encode(raw, mean, std, delta_std);
  EXPECT_NEAR(expert->energy(e.x, e.cond)[0].item<double>(), 0.5 * (0.25 + 1.0 + 0.25), 1e-6);
}

TEST(TrajectoryExperts, GeneratorKeepsBothExpertsThroughItsFile) {
  const std::string dir = ebm::testing::FreshTempDir("generator_experts");
  ebm::TrajectoryGeneratorMeta meta;
  meta.features = "qpos[0:1] qpos[1:2] qvel[0:1]";
  meta.history = kH;
  meta.future = kF;
  meta.dim = kD;
  meta.channels = 8;
  meta.layers = 1;
  meta.decimation = 5;
  meta.timestep = 0.1;
  meta.nq = 2;
  meta.nv = 1;
  meta.prior_weight = 0.01;  // as the net's options
  torch::manual_seed(5);
  auto net = std::make_shared<ebm::TrajectoryEnergyNetImpl>(Opts().channels(8).layers(1));
  const auto mean = torch::zeros({kD}), std = torch::ones({kD}), delta_std = torch::ones({kD});
  ebm::TrajectoryGenerator g(meta, net, ebm::LangevinOptions().steps(3), mean, std, delta_std,
                             torch::randn({10, kF, kD}));
  g.set_limits(torch::tensor({-1.0f, -5.0f, -5.0f}), torch::tensor({1.0f, 5.0f, 5.0f}), 2.0);
  g.set_kinematics(torch::tensor({0}), torch::tensor({2}), torch::tensor({0.5f}), 0.25);
  EXPECT_THROW(g.set_kinematics(torch::tensor({0}), torch::tensor({9}), torch::tensor({0.5f}), 1.0),
               std::invalid_argument);
  const std::string path = dir + "/generator.pt";
  g.save(path);
  const auto back = ebm::TrajectoryGenerator::load(path);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(back->has_limits());
  EXPECT_TRUE(back->has_kinematics());
  EXPECT_DOUBLE_EQ(back->limit_weight(), 2.0);
  EXPECT_DOUBLE_EQ(back->kinematic_weight(), 0.25);
  // The composed energy: net + 2 E_limits + 0.25 E_kinematic, each term computed on its own.
  const auto x = torch::randn({4, kF, kD}) * 3, cond = torch::randn({4, kH, kD});
  ebm::StateLimitEnergy limits(Opts(), mean, std, delta_std, torch::tensor({-1.0f, -5.0f, -5.0f}),
                               torch::tensor({1.0f, 5.0f, 5.0f}));
  ebm::KinematicEnergy kin(Opts(), mean, std, delta_std, torch::tensor({0}), torch::tensor({2}),
                           torch::tensor({0.5f}), 0.5);
  const auto want =
      net->energy(x, cond) + 2.0 * limits->energy(x, cond) + 0.25 * kin->energy(x, cond);
  EXPECT_TRUE(torch::allclose(back->sampling_energy()->energy(x, cond), want, 1e-4, 1e-4));
  back->set_limit_weight(0);
  back->set_kinematic_weight(0);
  EXPECT_TRUE(
      torch::allclose(back->sampling_energy()->energy(x, cond), net->energy(x, cond), 1e-5, 1e-5));
}

TEST(TrajectoryNets, ChainWindowsFeedsEachWindowTheLastFrames) {
  // History 0, 1, 2; each window continues with last + 1, last + 2: 3 4 | 5 6 | 7 (cut at 5
  // frames).
  const auto history = torch::arange(3, torch::kFloat32).view({1, 3, 1});
  std::vector<torch::Tensor> seen;
  const auto out = ebm::chain_windows(history, 5, 2, [&](const torch::Tensor& h) {
    seen.push_back(h.clone());
    const auto last = h.select(1, 2).unsqueeze(1);
    return torch::cat({last + 1, last + 2}, 1);
  });
  EXPECT_TRUE(torch::equal(out.flatten(), torch::tensor({3.0f, 4.0f, 5.0f, 6.0f, 7.0f})));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(torch::equal(seen[1].flatten(), torch::tensor({2.0f, 3.0f, 4.0f})));
  EXPECT_TRUE(torch::equal(seen[2].flatten(), torch::tensor({4.0f, 5.0f, 6.0f})));
  EXPECT_THROW(ebm::chain_windows(history, 4, 2, [](const torch::Tensor& h) { return h; }),
               std::logic_error);
  EXPECT_THROW(
      ebm::chain_windows(history.view({3, 1}), 4, 2, [](const torch::Tensor& h) { return h; }),
      std::invalid_argument);
}

// The experts' closed-form gradients (what the sampler uses) against autograd of their energy()
// (the base class's energy_and_grad), with and without a smooth basis, with futures beyond the
// limits on both sides; and a WeightedSumEnergy mixing an autograd term with closed-form ones
// against autograd of the whole sum.
TEST(TrajectoryExperts, ClosedFormGradientsEqualAutograd) {
  torch::manual_seed(11);
  const float inf = std::numeric_limits<float>::infinity();
  const auto mean = torch::tensor({0.5f, -1.0f, 0.2f}), std = torch::tensor({2.0f, 1.0f, 4.0f});
  const auto delta_std = torch::tensor({0.3f, 3.0f, 1.5f});
  for (const int64_t basis : {int64_t{0}, int64_t{4}}) {
    const auto o = ebm::TrajectoryNetOptions(kD, kH, 8).basis(basis);
    auto limits = std::make_shared<ebm::StateLimitEnergyImpl>(o, mean, std, delta_std,
                                                              torch::tensor({-1.0f, -inf, -2.0f}),
                                                              torch::tensor({1.0f, inf, 0.5f}));
    auto kinematic = std::make_shared<ebm::KinematicEnergyImpl>(
        o, mean, std, delta_std, torch::tensor({0, 1}), torch::tensor({2, 2}),
        torch::tensor({0.1f, 0.3f}), 0.04);
    auto goal = std::make_shared<ebm::GoalEnergyImpl>(
        o, mean, std, delta_std,
        torch::tensor({0.1f, 0.0f, -0.2f, 0.05f, 0.3f, 0.0f, 0.0f, -0.1f, 0.02f}).view({3, 3}),
        torch::tensor({0.4f, -0.8f, 1.0f}), torch::tensor({0.1f, 0.2f, 0.3f}),
        torch::tensor({0.15f, 0.1f, 0.32f}));
    const auto x = 3 * torch::randn({5, o.latent_frames(), kD});  // well beyond the limits
    const auto cond = torch::randn({5, kH, kD});
    std::vector<std::shared_ptr<ebm::EnergyModel>> experts = {limits, kinematic, goal};
    for (const auto& expert : experts) {
      ASSERT_TRUE(expert->closed_form_gradient());
      for (const double scale : {1.0, 0.3}) {
        const auto [e, g] = expert->energy_and_grad(x, cond, scale);
        const auto [e_ref, g_ref] = expert->EnergyModel::energy_and_grad(x, cond, scale);
        EXPECT_TRUE(torch::allclose(e, e_ref, 1e-5, 1e-6)) << "basis " << basis;
        EXPECT_TRUE(torch::allclose(g, g_ref, 1e-4, 1e-5))
            << "basis " << basis << " scale " << scale << " max diff "
            << (g - g_ref).abs().max().item<double>();
        EXPECT_GT(g.abs().max().item<double>(), 1e-3);  // not trivially zero
      }
    }
    auto net = std::make_shared<ebm::TrajectoryEnergyNetImpl>(
        ebm::TrajectoryNetOptions(o).channels(8).layers(1));
    ebm::WeightedSumEnergy sum;
    sum.add(net, 1.0).add(limits, 0.7).add(kinematic, 1.3).add(goal, 0.5);
    const auto [e, g] = sum.energy_and_grad(x, cond, 0.9);
    const auto [e_ref, g_ref] = sum.EnergyModel::energy_and_grad(x, cond, 0.9);
    EXPECT_TRUE(torch::allclose(e, e_ref, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(g, g_ref, 1e-4, 1e-5))
        << "max diff " << (g - g_ref).abs().max().item<double>();
  }
}
