#include "ebm/eval/trajectory_metrics.h"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ebm::eval {

namespace {

void check_traj(const torch::Tensor& t, int64_t dims, const char* who) {
  if (!t.defined() || t.dim() != dims || t.size(-1) != 3) {
    throw std::invalid_argument(std::string(who) + ": expected a tensor of " +
                                std::to_string(dims) + " dims ending in 3 (xyz), got " +
                                (t.defined() ? c10::str(t.sizes()) : "none"));
  }
}

// [T, P, 3] -> per-frame, per-point distances [T, P].
torch::Tensor point_dist(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) {
    throw std::invalid_argument("trajectory metrics: shapes differ: " + c10::str(a.sizes()) +
                                " vs " + c10::str(b.sizes()));
  }
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).pow(2).sum(-1).sqrt();
}

}  // namespace

double ade(const torch::Tensor& a, const torch::Tensor& b) {
  check_traj(a, 3, "ade");
  return point_dist(a, b).mean().item<double>();
}

double fde(const torch::Tensor& a, const torch::Tensor& b) {
  check_traj(a, 3, "fde");
  return point_dist(a, b)[-1].mean().item<double>();
}

double error_at(const torch::Tensor& a, const torch::Tensor& b, int64_t t) {
  check_traj(a, 3, "error_at");
  if (t < 1 || t > a.size(0)) {
    throw std::invalid_argument("error_at: frame " + std::to_string(t) + " outside 1.." +
                                std::to_string(a.size(0)));
  }
  return point_dist(a, b)[t - 1].mean().item<double>();
}

double min_ade(const torch::Tensor& samples, const torch::Tensor& truth) {
  check_traj(samples, 4, "min_ade");
  double best = 1e300;
  for (int64_t k = 0; k < samples.size(0); ++k) best = std::min(best, ade(samples[k], truth));
  return best;
}

double min_fde(const torch::Tensor& samples, const torch::Tensor& truth) {
  check_traj(samples, 4, "min_fde");
  double best = 1e300;
  for (int64_t k = 0; k < samples.size(0); ++k) best = std::min(best, fde(samples[k], truth));
  return best;
}

double nearest_branch_ade(const torch::Tensor& samples, const torch::Tensor& branches) {
  check_traj(samples, 4, "nearest_branch_ade");
  check_traj(branches, 4, "nearest_branch_ade");
  double sum = 0;
  for (int64_t k = 0; k < samples.size(0); ++k) {
    double best = 1e300;
    for (int64_t b = 0; b < branches.size(0); ++b)
      best = std::min(best, ade(samples[k], branches[b]));
    sum += best;
  }
  return sum / static_cast<double>(samples.size(0));
}

double diversity(const torch::Tensor& set) {
  check_traj(set, 4, "diversity");
  const int64_t k = set.size(0);
  if (k < 2) return 0.0;
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i + 1; j < k; ++j) sum += ade(set[i], set[j]);
  }
  return sum / (k * (k - 1) / 2.0);
}

double energy_distance(const torch::Tensor& x, const torch::Tensor& y) {
  check_traj(x, 4, "energy_distance");
  check_traj(y, 4, "energy_distance");
  const auto fx = x.to(torch::kFloat64).flatten(1), fy = y.to(torch::kFloat64).flatten(1);
  const double xy = torch::cdist(fx, fy).mean().item<double>();
  auto within = [](const torch::Tensor& f) {
    const int64_t n = f.size(0);
    if (n < 2) return 0.0;
    return torch::cdist(f, f).sum().item<double>() / static_cast<double>(n * (n - 1));
  };
  return 2 * xy - within(fx) - within(fy);
}

double movement(const torch::Tensor& set, const torch::Tensor& start) {
  check_traj(set, 4, "movement");
  auto last = set.select(1, set.size(1) - 1).to(torch::kFloat64);  // [K, P, 3]
  return (last - start.to(torch::kFloat64).unsqueeze(0))
      .pow(2)
      .sum(-1)
      .sqrt()
      .mean()
      .item<double>();
}

}  // namespace ebm::eval
