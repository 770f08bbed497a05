// Calibration and continual-learning summaries against hand computations on tiny inputs.
#include "ebm/eval/classification.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <vector>

TEST(Calibration, ExpectedCalibrationErrorByHand) {
  // Confidences 0.92 (right), 0.8 (wrong), 0.55 (right), 0.6 (wrong), 1.0 (right); 2 bins:
  // [0, 0.5) empty; [0.5, 1]: all five, accuracy 3/5, mean confidence 0.774 -> ECE 0.174.
  const auto probs = torch::tensor({{0.92, 0.08}, {0.2, 0.8}, {0.55, 0.45}, {0.4, 0.6}, {1.0, 0.0}},
                                   torch::kFloat64);
  const auto labels = torch::tensor({0, 0, 0, 0, 0}, torch::kLong);
  const auto two = ebm::eval::calibration(probs, labels, 2);
  EXPECT_NEAR(two.ece, 0.174, 1e-9);
  EXPECT_EQ(two.count, (std::vector<int64_t>{0, 5}));
  EXPECT_NEAR(two.accuracy, 0.6, 1e-12);
  // 10 bins: {0.55} acc 1, {0.6} acc 0, {0.8} acc 0, {0.92, 1.0} (the last bin) acc 1, mean
  // confidence 0.96: ECE = (0.45 + 0.6 + 0.8 + 2 * 0.04) / 5 = 0.386.
  const auto ten = ebm::eval::calibration(probs, labels, 10);
  EXPECT_NEAR(ten.ece, 0.386, 1e-9);
  EXPECT_EQ(ten.count[9], 2);
  EXPECT_NEAR(ten.bin_accuracy[9], 1.0, 1e-12);
  EXPECT_NEAR(ten.confidence[9], 0.96, 1e-12);
}

TEST(Calibration, RejectsMismatchedShapes) {
  EXPECT_THROW(ebm::eval::calibration(torch::rand({3, 2}), torch::zeros({2}, torch::kLong)),
               std::invalid_argument);
}

TEST(Continual, SummaryByHand) {
  // After task 0: [0.9]; after 1: [0.5, 0.8]; after 2: [0.2, 0.7, 0.95].
  const std::vector<std::vector<double>> acc{{0.9}, {0.5, 0.8}, {0.2, 0.7, 0.95}};
  const auto s = ebm::eval::summarize_continual(acc);
  ASSERT_EQ(s.mean_seen_accuracy.size(), 3u);
  EXPECT_NEAR(s.mean_seen_accuracy[0], 0.9, 1e-12);
  EXPECT_NEAR(s.mean_seen_accuracy[1], 0.65, 1e-12);
  EXPECT_NEAR(s.mean_seen_accuracy[2], 0.6166666666666667, 1e-12);
  EXPECT_NEAR(s.final_accuracy, s.mean_seen_accuracy[2], 1e-15);
  ASSERT_EQ(s.forgetting.size(), 2u);
  EXPECT_NEAR(s.forgetting[0], 0.7, 1e-12);  // best 0.9 -> 0.2
  EXPECT_NEAR(s.forgetting[1], 0.1, 1e-12);  // best 0.8 -> 0.7
  EXPECT_NEAR(s.mean_forgetting, 0.4, 1e-12);
}

TEST(Continual, RejectsAShortRow) {
  EXPECT_THROW(ebm::eval::summarize_continual({{0.9}, {0.5}}), std::invalid_argument);
}
