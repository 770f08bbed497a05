// Image metrics against hand-computed values and closed forms: AUROC (ties), Frechet distance,
// kernel distance (unbiasedness), Inception Score; PGD's budget and ascent; feature extraction
// through a TorchScript module written by PyTorch itself.
#include "ebm/eval/image_metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/eval/adversarial.h"
#include "ebm/eval/features.h"
#include "tests/support/temp_dir.h"

namespace ebm::eval {
namespace {

TEST(Auroc, HandComputedWithTies) {
  // Pairs: 0.9 beats both, 0.8 beats both, 0.5 ties 0.5 (1/2) and beats 0.3: 5.5 of 6.
  EXPECT_NEAR(auroc({0.9, 0.8, 0.5}, {0.5, 0.3}), 5.5 / 6.0, 1e-12);
  EXPECT_DOUBLE_EQ(auroc({1, 1, 1}, {1, 1}), 0.5);
  EXPECT_DOUBLE_EQ(auroc({2, 3}, {0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(auroc({0, 1}, {2, 3}), 0.0);
}

TEST(Auroc, EqualsPairCountingOnRandomScoresWithTies) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> d(0, 9);  // few distinct values: many ties
  std::vector<double> p(137), n(91);
  for (auto& v : p) v = d(rng) + 1;
  for (auto& v : n) v = d(rng);
  double wins = 0;
  for (double a : p)
    for (double b : n) wins += a > b ? 1.0 : (a == b ? 0.5 : 0.0);
  EXPECT_NEAR(auroc(p, n), wins / (p.size() * n.size()), 1e-12);
}

TEST(Auroc, RejectsEmptyAndNaN) {
  EXPECT_THROW(auroc({}, {1.0}), std::invalid_argument);
  EXPECT_THROW(auroc({std::nan("")}, {1.0}), std::invalid_argument);
}

TEST(Frechet, SetWithItselfIsZero) {
  Eigen::MatrixXd f = Eigen::MatrixXd::Random(200, 6);
  const auto s = gaussian_stats(f);
  EXPECT_NEAR(frechet_distance(s, s), 0.0, 1e-9);
}

TEST(Frechet, DiagonalGaussiansMatchTheClosedForm) {
  GaussianStats a{Eigen::Vector2d(0, 0), Eigen::Vector2d(1, 4).asDiagonal(), 0};
  GaussianStats b{Eigen::Vector2d(1, 2), Eigen::Vector2d(4, 9).asDiagonal(), 0};
  // |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2 = 5 + 1 + 1.
  EXPECT_NEAR(frechet_distance(a, b), 7.0, 1e-12);
}

TEST(Frechet, NonCommutingCovariancesMatchTheTwoByTwoFormula) {
  Eigen::Matrix2d sa, sb;
  sa << 2.0, 0.7, 0.7, 1.0;
  sb << 1.5, -0.4, -0.4, 0.8;
  GaussianStats a{Eigen::Vector2d(0.3, -1), sa, 0}, b{Eigen::Vector2d(-0.2, 0.5), sb, 0};
  // For a 2x2 matrix M with positive eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
  const Eigen::Matrix2d m = sa * sb;
  const double tr_sqrt =
      std::sqrt(m.trace() + 2 * std::sqrt(m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0)));
  const double expected = (a.mean - b.mean).squaredNorm() + sa.trace() + sb.trace() - 2 * tr_sqrt;
  EXPECT_NEAR(frechet_distance(a, b), expected, 1e-10);
}

TEST(Frechet, SampledShiftedGaussiansApproachTheShift) {
  torch::manual_seed(0);
  auto x = torch::randn({20000, 4}, torch::kFloat64);
  auto shift = torch::tensor({1.0, -0.5, 0.0, 2.0}, torch::kFloat64);
  auto y = torch::randn({20000, 4}, torch::kFloat64) + shift;
  const double d = frechet_distance(gaussian_stats(to_eigen(x)), gaussian_stats(to_eigen(y)));
  EXPECT_NEAR(d, 5.25, 0.1);  // |shift|^2; the covariance terms vanish up to sampling noise
}

TEST(KernelDistance, HandComputedTinySets) {
  Eigen::MatrixXd a(2, 1), b(2, 1);
  a << 0, 1;
  b << 1, 2;
  // k(x, y) = (xy + 1)^3: aa off-diagonal 1+1 -> 1; bb 27+27 -> 27; ab (1+1+8+27)/4 * 2 = 18.5.
  EXPECT_NEAR(mmd2_unbiased_polynomial(a, b), 9.5, 1e-12);
}

TEST(KernelDistance, UnbiasedOnEqualDistributionsAndPositiveOnDifferentOnes) {
  torch::manual_seed(1);
  std::vector<double> same;
  for (int r = 0; r < 300; ++r) {
    same.push_back(mmd2_unbiased_polynomial(to_eigen(torch::randn({40, 3}, torch::kFloat64)),
                                            to_eigen(torch::randn({40, 3}, torch::kFloat64))));
  }
  double mean = 0, var = 0;
  for (double v : same) mean += v / same.size();
  for (double v : same) var += (v - mean) * (v - mean) / (same.size() - 1);
  const double se = std::sqrt(var / same.size());
  EXPECT_LT(std::abs(mean), 4 * se) << "mean " << mean << " se " << se;
  EXPECT_TRUE(std::any_of(same.begin(), same.end(), [](double v) { return v < 0; }))
      << "an unbiased estimate must sometimes be negative on equal distributions";
  auto far = kernel_distance(to_eigen(torch::randn({400, 3}, torch::kFloat64)),
                             to_eigen(torch::randn({400, 3}, torch::kFloat64) + 1.0), 20, 100, 0);
  EXPECT_GT(far.mean, 10 * far.std / std::sqrt(20.0));
  EXPECT_EQ(far.subset_size, 100);
}

TEST(InceptionScore, UniformIsOneAndConfidentBalancedIsTheClassCount) {
  Eigen::MatrixXd uniform = Eigen::MatrixXd::Constant(100, 5, 0.2);
  EXPECT_NEAR(inception_score(uniform, 10).mean, 1.0, 1e-12);
  Eigen::MatrixXd onehot = Eigen::MatrixXd::Zero(100, 5);
  for (int i = 0; i < 100; ++i) onehot(i, i % 5) = 1;
  const auto is = inception_score(onehot, 10);
  EXPECT_NEAR(is.mean, 5.0, 1e-9);
  EXPECT_NEAR(is.std, 0.0, 1e-9);
}

TEST(Pgd, LinfOnALinearLossReachesTheCornerOfTheBudget) {
  auto w = torch::tensor({1.0f, -2.0f, 0.5f, -0.1f}).view({1, 4});
  auto x = torch::full({3, 4}, 0.5f);
  auto loss = [&](const torch::Tensor& v) { return (v * w).sum(1); };
  auto adv = pgd_attack(loss, x, PgdOptions().epsilon(0.1).step_size(0.03).steps(10));
  EXPECT_TRUE(torch::allclose(adv, x + 0.1 * w.sign().expand_as(x), 1e-6, 1e-6)) << adv;
}

TEST(Pgd, L2OnALinearLossMovesAlongTheGradient) {
  auto w = torch::tensor({3.0f, 4.0f}).view({1, 2});
  auto x = torch::full({2, 2}, 0.5f);
  auto loss = [&](const torch::Tensor& v) { return (v * w).sum(1); };
  auto adv = pgd_attack(loss, x,
                        PgdOptions()
                            .norm(AttackNorm::kL2)
                            .epsilon(0.2)
                            .step_size(0.05)
                            .steps(20)
                            .random_start(false));
  auto expected = x + 0.2 * (w / 5.0).expand_as(x);
  EXPECT_TRUE(torch::allclose(adv, expected, 1e-4, 1e-4)) << adv;
}

TEST(Pgd, IncreasesTheLossAndStaysInsideItsBudgetAndTheBox) {
  torch::manual_seed(2);
  auto net = torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)),
                                   torch::nn::ReLU(), torch::nn::Flatten(),
                                   torch::nn::Linear(4 * 8 * 8, 3));
  auto x = torch::rand({16, 1, 8, 8});
  auto y = torch::randint(3, {16}, torch::kLong);
  auto loss = [&](const torch::Tensor& v) {
    return torch::nn::functional::cross_entropy(
        net->forward(v), y,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  };
  const double before = loss(x).sum().item<double>();
  for (auto norm : {AttackNorm::kLinf, AttackNorm::kL2}) {
    const double eps = norm == AttackNorm::kLinf ? 8.0 / 255 : 0.5;
    auto adv =
        pgd_attack(loss, x, PgdOptions().norm(norm).epsilon(eps).step_size(eps / 4).steps(10));
    EXPECT_GT(loss(adv).sum().item<double>(), before + 1e-3) << attack_norm_name(norm);
    auto delta = (adv - x).flatten(1);
    if (norm == AttackNorm::kLinf) {
      EXPECT_LE(delta.abs().max().item<double>(), eps + 1e-6);
    } else {
      EXPECT_LE(delta.norm(2, 1).max().item<double>(), eps + 1e-5);
    }
    EXPECT_GE(adv.min().item<double>(), 0.0);
    EXPECT_LE(adv.max().item<double>(), 1.0);
  }
  EXPECT_TRUE(torch::equal(pgd_attack(loss, x, PgdOptions().epsilon(0)), x));
}

TEST(Features, TorchScriptModuleIsCalledLikeTheFidTools) {
  const auto dir = ebm::testing::FreshTempDir("fake_inception");
  const std::string pt = dir + "/fake_inception.pt";
  const std::string cmd = std::string(EBM_TEST_PYTHON) + " " + EBM_TEST_SOURCE_DIR +
                          "/tests/eval/make_fake_inception.py " + pt;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto fx = inception_features(pt, torch::kCPU);
  EXPECT_TRUE(fx->comparable_with_published());
  auto x = torch::rand({5, 1, 6, 6});  // grey: repeated to 3 channels
  torch::Tensor f, p;
  fx->extract(x, &f, &p);
  auto u8 = (x * 255).round().clamp(0, 255);
  auto expected_f = u8.mean({2, 3}).repeat({1, 3}).to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(f, expected_f, 1e-4, 1e-4)) << f << expected_f;
  auto w =
      torch::tensor({{0.01, -0.02, 0.0, 0.03}, {0.0, 0.01, -0.01, 0.0}, {0.02, 0.0, 0.01, -0.03}},
                    torch::kFloat64);
  EXPECT_TRUE(torch::allclose(p, torch::softmax(expected_f.matmul(w), 1), 1e-5, 1e-6))
      << "probabilities must come from no_output_bias=True";
  EXPECT_THROW(inception_features(dir + "/missing.pt", torch::kCPU), std::runtime_error);
}

}  // namespace
}  // namespace ebm::eval
