// Metrics of the image experiments: AUROC (out-of-distribution detection), the Frechet distance
// (FID), the kernel distance (KID) and the Inception Score over any feature extractor's outputs.
// Matrix algebra with Eigen; features arrive as rows of a matrix (one sample per row).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

namespace ebm::eval {

// Area under the ROC curve with `positive` as the positive class: the probability that a random
// positive scores higher than a random negative, ties counted 1/2 (Mann-Whitney U / (n+ n-)).
// Throws std::invalid_argument for an empty side or a NaN score.
double auroc(const std::vector<double>& positive, const std::vector<double>& negative);

// Mean and (unbiased, n - 1) covariance of the rows of `features`.
struct GaussianStats {
  Eigen::VectorXd mean;
  Eigen::MatrixXd cov;
  int64_t count = 0;
};
GaussianStats gaussian_stats(const Eigen::MatrixXd& features);

// Frechet distance between two Gaussians:
//   |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)).
// The trace of the square root is computed as the sum of the square roots of the eigenvalues of
// the symmetric matrix S_a^(1/2) S_b S_a^(1/2) (same spectrum as S_a S_b), negative rounding
// noise clamped to 0. FID = this distance over Inception pool features.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// Kernel distance: the unbiased estimate of MMD^2 with the cubic polynomial kernel
// k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random subsets of `subset_size` rows of each
// set (drawn without replacement within a subset; subset_size is capped at the smaller set).
struct KernelDistance {
  double mean = 0, std = 0;
  int64_t subsets = 0, subset_size = 0;
};
KernelDistance kernel_distance(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b,
                               int64_t subsets = 100, int64_t subset_size = 1000,
                               uint64_t seed = 0);
// The unbiased MMD^2 estimate of one pair of sets (all rows), the building block of the above.
double mmd2_unbiased_polynomial(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

// Inception Score: exp(E_x KL(p(y|x) || p(y))) over each of `splits` consecutive splits of the
// rows of `probs` (class probabilities, rows summing to 1); mean and std over the splits.
struct InceptionScore {
  double mean = 0, std = 0;
  int64_t splits = 0;
};
InceptionScore inception_score(const Eigen::MatrixXd& probs, int64_t splits = 10);

}  // namespace ebm::eval
