#include "ebm/eval/classification.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ebm::eval {

Calibration calibration(const torch::Tensor& probs, const torch::Tensor& labels, int64_t bins) {
  if (probs.dim() != 2 || labels.dim() != 1 || probs.size(0) != labels.size(0) || bins < 1)
    throw std::invalid_argument("calibration: probabilities [N, C] and labels [N] expected, got " +
                                c10::str(probs.sizes()) + " and " + c10::str(labels.sizes()) +
                                " with " + std::to_string(bins) + " bins");
  const auto [conf_t, pred_t] = probs.to(torch::kCPU, torch::kFloat64).max(1);
  const auto conf = conf_t.contiguous();
  const auto correct = pred_t.eq(labels.to(torch::kCPU, torch::kLong)).contiguous();
  Calibration c;
  c.confidence.assign(static_cast<size_t>(bins), 0.0);
  c.bin_accuracy.assign(static_cast<size_t>(bins), 0.0);
  c.count.assign(static_cast<size_t>(bins), 0);
  const int64_t n = conf.size(0);
  const double* cp = conf.data_ptr<double>();
  const bool* ok = correct.data_ptr<bool>();
  for (int64_t i = 0; i < n; ++i) {
    const auto b = static_cast<size_t>(std::clamp<int64_t>(
        static_cast<int64_t>(std::floor(cp[i] * static_cast<double>(bins))), 0, bins - 1));
    c.confidence[b] += cp[i];
    c.bin_accuracy[b] += ok[i] ? 1.0 : 0.0;
    c.accuracy += ok[i] ? 1.0 : 0.0;
    ++c.count[b];
  }
  for (size_t b = 0; b < c.count.size(); ++b) {
    if (c.count[b] == 0) continue;
    const auto k = static_cast<double>(c.count[b]);
    c.confidence[b] /= k;
    c.bin_accuracy[b] /= k;
    c.ece += k / static_cast<double>(n) * std::abs(c.bin_accuracy[b] - c.confidence[b]);
  }
  c.accuracy /= static_cast<double>(std::max<int64_t>(n, 1));
  return c;
}

ContinualSummary summarize_continual(const std::vector<std::vector<double>>& accuracy) {
  const size_t tasks = accuracy.size();
  for (size_t i = 0; i < tasks; ++i) {
    if (accuracy[i].size() < i + 1)
      throw std::invalid_argument("summarize_continual: row " + std::to_string(i) + " holds " +
                                  std::to_string(accuracy[i].size()) + " accuracies, needs " +
                                  std::to_string(i + 1));
  }
  ContinualSummary s;
  for (size_t i = 0; i < tasks; ++i) {
    double sum = 0;
    for (size_t j = 0; j <= i; ++j) sum += accuracy[i][j];
    s.mean_seen_accuracy.push_back(sum / static_cast<double>(i + 1));
  }
  if (tasks == 0) return s;
  s.final_accuracy = s.mean_seen_accuracy.back();
  for (size_t j = 0; j + 1 < tasks; ++j) {
    double best = 0;
    for (size_t i = j; i + 1 < tasks; ++i) best = std::max(best, accuracy[i][j]);
    s.forgetting.push_back(best - accuracy[tasks - 1][j]);
    s.mean_forgetting += s.forgetting.back() / static_cast<double>(tasks - 1);
  }
  return s;
}

}  // namespace ebm::eval
