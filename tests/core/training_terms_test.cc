// The trainer's optional terms against independent computations: the hybrid (JEM) cross-entropy
// over all classes and over the batch's classes, the ICD KL term's value and its gradient (which
// must reach the parameters only through the extra Langevin step), and the augmentation
// transitions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/core/ewc.h"
#include "ebm/core/icd.h"
#include "ebm/core/options.h"
#include "ebm/core/trainer.h"

namespace {

// E(x, y) = -w_y . x: the logits of p(y | x) are w_y . x.
class LinearClassEnergy : public ebm::EnergyModel {
 public:
  LinearClassEnergy(int64_t classes, int64_t dim) {
    w = register_parameter("w", torch::randn({classes, dim}));
  }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& y) override {
    return -(x * w.index_select(0, y)).sum(1);
  }
  torch::Tensor w;
};

// E(x) = 0.5 a |x - m|^2 (a scalar, m a vector): every derivative has a closed form.
class QuadraticEnergy : public ebm::EnergyModel {
 public:
  QuadraticEnergy(double a_init, const torch::Tensor& m_init) {
    a = register_parameter("a", torch::tensor(a_init, torch::kFloat64));
    m = register_parameter("m", m_init.to(torch::kFloat64));
  }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return 0.5 * a * (x.to(torch::kFloat64) - m).pow(2).sum(1);
  }
  torch::Tensor a, m;
};

ebm::TrainerOptions HybridOptions(ebm::ClassifyOver over) {
  return ebm::TrainerOptions()
      .dequantize(false)
      .classify_weight(1.0)
      .classify_over(over)
      .num_classes(3)
      .buffer(ebm::ReplayBufferOptions().capacity(64).init_low(-1).init_high(1))
      .langevin(ebm::LangevinOptions().steps(2).step_size(0.01).noise_std(0.0));
}

// Mean cross-entropy of softmax over `classes` of the logits w_y . x, in double loops.
double ReferenceCrossEntropy(const torch::Tensor& w, const torch::Tensor& x,
                             const torch::Tensor& labels, const std::vector<int64_t>& classes) {
  auto wa = w.accessor<float, 2>();
  auto xa = x.accessor<float, 2>();
  double total = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    double log_sum = 0, target = 0, max_logit = -1e300;
    std::vector<double> logits;
    for (const int64_t c : classes) {
      double l = 0;
      for (int64_t d = 0; d < x.size(1); ++d) l += wa[c][d] * xa[i][d];
      logits.push_back(l);
      max_logit = std::max(max_logit, l);
      if (c == labels[i].item<int64_t>()) target = l;
    }
    for (const double l : logits) log_sum += std::exp(l - max_logit);
    total += max_logit + std::log(log_sum) - target;
  }
  return total / static_cast<double>(x.size(0));
}

}  // namespace

TEST(TrainingTerms, HybridTermIsTheCrossEntropyOverAllClasses) {
  torch::manual_seed(0);
  auto model = std::make_shared<LinearClassEnergy>(3, 4);
  ebm::ContrastiveDivergenceTrainer trainer(model, {4}, HybridOptions(ebm::ClassifyOver::kAll));
  const auto x = torch::randn({6, 4});
  const auto y = torch::tensor({0, 1, 2, 2, 1, 0}, torch::kLong);
  const auto w = model->w.detach().clone();  // the step updates the weights after the loss
  const auto r = trainer.step(x, y);
  EXPECT_NEAR(r.classify_loss, ReferenceCrossEntropy(w, x, y, {0, 1, 2}), 1e-5);
  EXPECT_NEAR(r.loss, r.ml_loss + r.l2_loss + r.classify_loss, 1e-5);
}

TEST(TrainingTerms, BatchClassesLeaveTheOtherLogitsOutOfTheSoftmax) {
  torch::manual_seed(1);
  auto model = std::make_shared<LinearClassEnergy>(3, 4);
  ebm::ContrastiveDivergenceTrainer trainer(model, {4}, HybridOptions(ebm::ClassifyOver::kBatch));
  const auto x = torch::randn({5, 4});
  const auto y = torch::tensor({0, 2, 2, 0, 0}, torch::kLong);  // class 1 absent
  const auto w = model->w.detach().clone();
  const auto r = trainer.step(x, y);
  EXPECT_NEAR(r.classify_loss, ReferenceCrossEntropy(w, x, y, {0, 2}), 1e-5);
  EXPECT_GT(std::abs(r.classify_loss - ReferenceCrossEntropy(w, x, y, {0, 1, 2})), 1e-3);
  // Class 1's weights get no gradient from the hybrid term, and CD touches only classes 0 and 2.
  EXPECT_TRUE(torch::equal(model->w.detach()[1], w[1]));
}

TEST(TrainingTerms, HybridTermNeedsClasses) {
  auto model = std::make_shared<LinearClassEnergy>(3, 4);
  auto options = HybridOptions(ebm::ClassifyOver::kAll).num_classes(0);
  try {
    ebm::ContrastiveDivergenceTrainer trainer(model, {4}, options);
    FAIL() << "no error";
  } catch (const ebm::OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("trainer.classify_weight"), std::string::npos) << e.what();
  }
}

TEST(TrainingTerms, KlTermValueAndGradientThroughTheStepAlone) {
  torch::manual_seed(2);
  const double a0 = 1.7, step = 0.2;
  const auto m0 = torch::tensor({0.3, -0.2, 0.5}, torch::kFloat64);
  QuadraticEnergy model(a0, m0);
  const auto x = torch::randn({5, 3}, torch::kFloat64).to(torch::kFloat32);
  const auto langevin =
      ebm::LangevinOptions().step_size(step).clamp_min(std::nullopt).clamp_max(std::nullopt);
  auto term = ebm::icd_kl_term(model, x, {}, langevin, /*entropy_weight=*/0.0);
  term.backward();
  // x' = x - s a (x - m); E_frozen(x') = 0.5 a0 |x' - m0|^2.
  const auto xd = x.to(torch::kFloat64);
  const auto moved = xd - step * a0 * (xd - m0);
  EXPECT_NEAR(term.item<double>(), (0.5 * a0 * (moved - m0).pow(2).sum(1)).mean().item<double>(),
              1e-5);
  // d/da of E_frozen(x'(a)) = a0 (x' - m0) . (-s (x - m0)); d/dm = a0 (x' - m0) . (s a0 I).
  const double grad_a = (a0 * (moved - m0) * (-step) * (xd - m0)).sum(1).mean().item<double>();
  const auto grad_m = (a0 * (moved - m0) * step * a0).mean(0);
  EXPECT_NEAR(model.a.grad().item<double>(), grad_a, 1e-5);
  EXPECT_TRUE(torch::allclose(model.m.grad(), grad_m, 1e-5, 1e-6))
      << model.m.grad() << " vs " << grad_m;
}

TEST(TrainingTerms, KlTermEntropyIsTheNearestNeighbourLogDistance) {
  torch::manual_seed(3);
  QuadraticEnergy model(0.0, torch::zeros({2}));  // a = 0: the step does not move x
  const auto x = torch::tensor({{0.0, 0.0}, {3.0, 4.0}, {0.0, 1.0}, {6.0, 8.0}});
  const auto langevin =
      ebm::LangevinOptions().step_size(0.1).clamp_min(std::nullopt).clamp_max(std::nullopt);
  const double w = 0.5;
  // Nearest distances: 1 (to (0, 1)), sqrt(18) (to (0, 1)), 1, 5 (to (3, 4)); E = 0.
  const double expected =
      -w * (std::log(1.0) + std::log(std::sqrt(18.0)) + std::log(1.0) + std::log(5.0)) / 4;
  EXPECT_NEAR(ebm::icd_kl_term(model, x, {}, langevin, w).item<double>(), expected, 1e-5);
}

TEST(TrainingTerms, AugmentationTranslatesAndMirrors) {
  torch::manual_seed(4);
  const auto x = torch::arange(2 * 1 * 5 * 6, torch::kFloat32).reshape({2, 1, 5, 6});
  EXPECT_TRUE(torch::equal(ebm::augment_chain_starts(x, 0.0, 2, true), x));
  EXPECT_TRUE(torch::equal(ebm::augment_chain_starts(x, 1.0, 0, false), x));
  // shift 1, no flip: every output is one of the 9 replicate-padded translations of its input.
  for (int trial = 0; trial < 20; ++trial) {
    const auto out = ebm::augment_chain_starts(x, 1.0, 1, false);
    for (int64_t i = 0; i < 2; ++i) {
      bool found = false;
      for (int64_t dy = -1; dy <= 1; ++dy) {
        for (int64_t dx = -1; dx <= 1; ++dx) {
          auto rows = (torch::arange(5) + dy).clamp(0, 4);
          auto cols = (torch::arange(6) + dx).clamp(0, 5);
          auto moved = x[i].index_select(1, rows).index_select(2, cols);
          found = found || torch::equal(out[i], moved);
        }
      }
      EXPECT_TRUE(found) << out[i];
    }
  }
  // Flip only: the mirror image or the image itself, and both occur.
  int mirrored = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const auto out = ebm::augment_chain_starts(x, 1.0, 0, true);
    const bool flip = torch::equal(out[0], x[0].flip({2}));
    EXPECT_TRUE(flip || torch::equal(out[0], x[0]));
    mirrored += flip ? 1 : 0;
  }
  EXPECT_GT(mirrored, 5);
  EXPECT_LT(mirrored, 35);
}

TEST(TrainingTerms, AugmentationNeedsImages) {
  auto model = std::make_shared<LinearClassEnergy>(3, 4);
  auto options = HybridOptions(ebm::ClassifyOver::kAll).augment_prob(0.5);
  EXPECT_THROW(ebm::ContrastiveDivergenceTrainer(model, {4}, options), std::invalid_argument);
}

TEST(TrainingTerms, EwcFisherOfASoftmaxRegressionInClosedForm) {
  // logits = W x: d log p(y | x) / dW = (onehot(y) - p) x^T, so F = mean over samples of its
  // square.
  torch::manual_seed(5);
  auto w = torch::randn({3, 4}, torch::kFloat64).requires_grad_(true);
  const auto x = torch::randn({6, 4}, torch::kFloat64);
  const auto y = torch::tensor({0, 1, 2, 1, 0, 2}, torch::kLong);
  auto logits = [&](const torch::Tensor& v) { return v.matmul(w.t()); };
  const auto fisher = ebm::diagonal_fisher(logits, {w}, x, y);
  auto expected = torch::zeros({3, 4}, torch::kFloat64);
  for (int64_t i = 0; i < 6; ++i) {
    auto p = torch::softmax(x[i].matmul(w.detach().t()), 0);
    auto g = (torch::one_hot(y[i], 3).to(torch::kFloat64) - p).unsqueeze(1) * x[i].unsqueeze(0);
    expected += g.pow(2) / 6.0;
  }
  EXPECT_TRUE(torch::allclose(fisher[0], expected, 1e-10, 1e-12));
  // The penalty: lambda/2 sum F (w - w*)^2, zero at the anchor.
  ebm::ElasticWeightConsolidation ewc(4.0);
  EXPECT_TRUE(ewc.empty());
  ewc.consolidate({w}, fisher);
  EXPECT_NEAR(ewc.penalty({w}).item<double>(), 0.0, 1e-15);
  const auto moved = w.detach() + 0.5;
  EXPECT_NEAR(ewc.penalty({moved}).item<double>(), 2.0 * (expected * 0.25).sum().item<double>(),
              1e-10);
  // A second task's Fisher adds up.
  ewc.consolidate({moved}, fisher);
  EXPECT_NEAR(ewc.penalty({moved + 1.0}).item<double>(), 2.0 * (2 * expected).sum().item<double>(),
              1e-10);
}
