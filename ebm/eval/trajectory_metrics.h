// Metrics of generated trajectories against recorded ones, on tracked points (fingertips,
// particles): trajectories are [T, P, 3] (frames, points, xyz) and sets of them [K, T, P, 3].
// Distances between two trajectories average the Euclidean distance of each point over points
// (and frames for ADE). Names and definitions are documented in ebm/README.md.
#pragma once

#include <torch/types.h>

namespace ebm::eval {

// Average displacement error: mean over frames and points of |a - b|.
double ade(const torch::Tensor& a, const torch::Tensor& b);
// Final displacement error: mean over points of |a - b| at the last frame.
double fde(const torch::Tensor& a, const torch::Tensor& b);
// Mean over points of |a - b| at frame t (1-based: t = 20 is the 20th future frame).
double error_at(const torch::Tensor& a, const torch::Tensor& b, int64_t t);
// Best of K: min over samples of ADE / FDE against one recorded continuation.
double min_ade(const torch::Tensor& samples, const torch::Tensor& truth);
double min_fde(const torch::Tensor& samples, const torch::Tensor& truth);
// The mirror of best-of-K: mean over samples of the ADE to the nearest true branch.
double nearest_branch_ade(const torch::Tensor& samples, const torch::Tensor& branches);
// Mean pairwise ADE within a set (0 for a single trajectory).
double diversity(const torch::Tensor& set);
// Energy distance between two sets, with the Euclidean distance of whole flattened trajectories:
// 2 E|X - Y| - E|X - X'| - E|Y - Y'| (within-set terms over distinct pairs; 0 for a singleton).
double energy_distance(const torch::Tensor& x, const torch::Tensor& y);
// Mean over samples and points of |s[T-1] - start|: how far the points move over the horizon.
double movement(const torch::Tensor& set, const torch::Tensor& start);

}  // namespace ebm::eval
