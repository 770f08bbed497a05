#include "ebm/eval/image_metrics.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace ebm::eval {

double auroc(const std::vector<double>& positive, const std::vector<double>& negative) {
  if (positive.empty() || negative.empty())
    throw std::invalid_argument("auroc: needs at least one positive and one negative score (got " +
                                std::to_string(positive.size()) + " and " +
                                std::to_string(negative.size()) + ")");
  struct Item {
    double score;
    bool positive;
  };
  std::vector<Item> all;
  all.reserve(positive.size() + negative.size());
  for (double s : positive) all.push_back({s, true});
  for (double s : negative) all.push_back({s, false});
  for (const auto& it : all)
    if (std::isnan(it.score)) throw std::invalid_argument("auroc: a score is NaN");
  std::sort(all.begin(), all.end(), [](const Item& a, const Item& b) { return a.score < b.score; });
  // Ranks 1..n, tied groups get the mean of their ranks.
  double positive_rank_sum = 0;
  size_t i = 0;
  while (i < all.size()) {
    size_t j = i;
    while (j + 1 < all.size() && all[j + 1].score == all[i].score) ++j;
    const double mean_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j + 1));
    for (size_t k = i; k <= j; ++k)
      if (all[k].positive) positive_rank_sum += mean_rank;
    i = j + 1;
  }
  const double np = static_cast<double>(positive.size()), nn = static_cast<double>(negative.size());
  const double u = positive_rank_sum - np * (np + 1) / 2;
  return u / (np * nn);
}

GaussianStats gaussian_stats(const Eigen::MatrixXd& features) {
  if (features.rows() < 2)
    throw std::invalid_argument("gaussian_stats: needs at least 2 rows, got " +
                                std::to_string(features.rows()));
  GaussianStats s;
  s.count = features.rows();
  s.mean = features.colwise().mean().transpose();
  const Eigen::MatrixXd centered = features.rowwise() - s.mean.transpose();
  s.cov = (centered.transpose() * centered) / static_cast<double>(features.rows() - 1);
  return s;
}

namespace {

// Symmetric PSD square root through the eigen-decomposition (negative eigenvalues -> 0).
Eigen::MatrixXd sqrt_psd(const Eigen::MatrixXd& m) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(0.5 * (m + m.transpose()));
  if (es.info() != Eigen::Success) throw std::runtime_error("frechet_distance: eigensolver failed");
  const Eigen::VectorXd roots = es.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return es.eigenvectors() * roots.asDiagonal() * es.eigenvectors().transpose();
}

}  // namespace

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  if (a.mean.size() != b.mean.size() || a.cov.rows() != b.cov.rows() ||
      a.cov.rows() != a.mean.size())
    throw std::invalid_argument("frechet_distance: feature dimensions differ (" +
                                std::to_string(a.mean.size()) + " vs " +
                                std::to_string(b.mean.size()) + ")");
  const Eigen::MatrixXd ra = sqrt_psd(a.cov);
  const Eigen::MatrixXd inner = ra * b.cov * ra;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(0.5 * (inner + inner.transpose()),
                                                    Eigen::EigenvaluesOnly);
  if (es.info() != Eigen::Success) throw std::runtime_error("frechet_distance: eigensolver failed");
  const double tr_sqrt = es.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  const double d = (a.mean - b.mean).squaredNorm() + a.cov.trace() + b.cov.trace() - 2 * tr_sqrt;
  return std::max(d, 0.0);
}

double mmd2_unbiased_polynomial(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  if (a.cols() != b.cols())
    throw std::invalid_argument("kernel_distance: feature dimensions differ (" +
                                std::to_string(a.cols()) + " vs " + std::to_string(b.cols()) + ")");
  const int64_t m = a.rows(), n = b.rows();
  if (m < 2 || n < 2) throw std::invalid_argument("kernel_distance: needs at least 2 rows per set");
  const double d = static_cast<double>(a.cols());
  auto kernel = [d](const Eigen::MatrixXd& x, const Eigen::MatrixXd& y) {
    Eigen::MatrixXd k = (x * y.transpose()).array() / d + 1.0;
    return Eigen::MatrixXd(k.array().cube());
  };
  const Eigen::MatrixXd kaa = kernel(a, a), kbb = kernel(b, b), kab = kernel(a, b);
  const double saa = kaa.sum() - kaa.trace(), sbb = kbb.sum() - kbb.trace();
  return saa / (static_cast<double>(m) * (m - 1)) + sbb / (static_cast<double>(n) * (n - 1)) -
         2 * kab.sum() / (static_cast<double>(m) * n);
}

KernelDistance kernel_distance(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, int64_t subsets,
                               int64_t subset_size, uint64_t seed) {
  if (subsets <= 0 || subset_size < 2)
    throw std::invalid_argument("kernel_distance: subsets must be > 0 and subset_size >= 2");
  KernelDistance r;
  r.subsets = subsets;
  r.subset_size = std::min<int64_t>({subset_size, a.rows(), b.rows()});
  if (r.subset_size < 2)
    throw std::invalid_argument("kernel_distance: needs at least 2 rows per set");
  std::mt19937_64 rng(seed);
  std::vector<int64_t> ia(a.rows()), ib(b.rows());
  std::vector<double> values;
  for (int64_t s = 0; s < subsets; ++s) {
    std::iota(ia.begin(), ia.end(), 0);
    std::iota(ib.begin(), ib.end(), 0);
    std::shuffle(ia.begin(), ia.end(), rng);
    std::shuffle(ib.begin(), ib.end(), rng);
    Eigen::MatrixXd sa(r.subset_size, a.cols()), sb(r.subset_size, b.cols());
    for (int64_t i = 0; i < r.subset_size; ++i) {
      sa.row(i) = a.row(ia[i]);
      sb.row(i) = b.row(ib[i]);
    }
    values.push_back(mmd2_unbiased_polynomial(sa, sb));
  }
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  r.mean = mean;
  r.std = values.size() > 1 ? std::sqrt(var / (values.size() - 1)) : 0.0;
  return r;
}

InceptionScore inception_score(const Eigen::MatrixXd& probs, int64_t splits) {
  if (splits <= 0 || probs.rows() < splits)
    throw std::invalid_argument("inception_score: " + std::to_string(probs.rows()) +
                                " rows cannot form " + std::to_string(splits) + " splits");
  if ((probs.array() < 0).any() || !probs.allFinite())
    throw std::invalid_argument("inception_score: probabilities must be finite and >= 0");
  InceptionScore r;
  r.splits = splits;
  std::vector<double> scores;
  const int64_t n = probs.rows();
  for (int64_t s = 0; s < splits; ++s) {
    const int64_t begin = s * n / splits, end = (s + 1) * n / splits;
    const Eigen::MatrixXd part = probs.middleRows(begin, end - begin);
    const Eigen::RowVectorXd marginal = part.colwise().mean();
    double kl = 0;
    for (int64_t i = 0; i < part.rows(); ++i)
      for (int64_t c = 0; c < part.cols(); ++c) {
        const double p = part(i, c);
        if (p > 0) kl += p * (std::log(p) - std::log(marginal(c)));
      }
    scores.push_back(std::exp(kl / part.rows()));
  }
  double mean = std::accumulate(scores.begin(), scores.end(), 0.0) / scores.size(), var = 0;
  for (double v : scores) var += (v - mean) * (v - mean);
  r.mean = mean;
  r.std = std::sqrt(var / scores.size());  // population std over splits, as the common IS code
  return r;
}

}  // namespace ebm::eval
