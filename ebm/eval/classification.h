// Metrics of classifiers: calibration (expected calibration error and the reliability diagram's
// bins) and the accuracy matrix of class-incremental (continual) learning.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace ebm::eval {

// Predictions binned by confidence (the largest class probability) into `bins` equal bins of
// [0, 1] (confidence 1 falls into the last).
struct Calibration {
  double ece = 0;       // sum over bins of count/N * |accuracy - mean confidence|
  double accuracy = 0;  // over all predictions
  std::vector<double> confidence, bin_accuracy;  // per bin (0 for an empty bin)
  std::vector<int64_t> count;
};
// probs: [N, C] class probabilities (rows summing to 1); labels: [N] integer.
Calibration calibration(const torch::Tensor& probs, const torch::Tensor& labels, int64_t bins = 15);

// accuracy[i][j]: accuracy on task j's test images after training on tasks 0 .. i (entries with
// j > i are ignored). Tasks are assumed equally large (mean over tasks = accuracy over their
// images).
struct ContinualSummary {
  std::vector<double> mean_seen_accuracy;  // after task i: mean over tasks 0 .. i
  double final_accuracy = 0;               // the last of those
  // forgetting[j] for j < T - 1: the best accuracy on task j after training on it, minus the
  // final accuracy on it (Chaudhry et al. 2018).
  std::vector<double> forgetting;
  double mean_forgetting = 0;
};
ContinualSummary summarize_continual(const std::vector<std::vector<double>>& accuracy);

}  // namespace ebm::eval
