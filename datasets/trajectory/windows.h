// Windows over recorded trajectories, as LibTorch tensors: H history frames and F future frames of
// chosen state features, for the trajectory EBM and its baselines. This is the Torch adapter of
// the record format and lives in its own target (ebm_trajectory_windows); the record format
// itself stays free of LibTorch.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "datasets/trajectory/record_file.h"
#include "datasets/trajectory/split.h"

namespace ebm::trajectory {

// A feature: a field of the frame or a slice of it, written "qpos" or "qpos[0:24]".
struct FeatureSlice {
  std::string field;
  int64_t begin = 0, end = 0;  // element range [begin, end) within the field
  std::string text() const;
};
// Parses "field" or "field[a:b]" against a layout; throws TrajectoryError naming what is wrong.
FeatureSlice parse_feature(const std::string& text, const FrameLayout& layout);

// The features of frames [begin, end) of an episode: float [end - begin, D], slices in order.
torch::Tensor episode_features(const Episode& episode, const FrameLayout& layout,
                               const std::vector<FeatureSlice>& features, int64_t begin,
                               int64_t end);

struct WindowOptions {
  int64_t history = 8;  // H frames of context
  int64_t future = 20;  // F frames to predict
  int64_t stride = 4;   // frames between consecutive window starts in an episode
  // Features, concatenated in order, e.g. {"qpos[0:24]", "qvel[0:24]"}.
  std::vector<std::string> features = {"qpos"};
  // Share of start states held out for validation (the split is by start state, so that no
  // validation future shares its start with a training one).
  double val_fraction = 0.2;
};

// Per-feature normalisation, stored with the models: states x -> (x - mean) / std, and future
// displacements from the last history frame d -> d / delta_std.
struct WindowStats {
  torch::Tensor mean;       // [D]
  torch::Tensor std;        // [D]
  torch::Tensor delta_std;  // [D]
};

class WindowDataset {
 public:
  // split: "train", "val" or "all"; windows from every episode whose start state falls in it.
  WindowDataset(const TrajectoryCorpus& corpus, const WindowOptions& options,
                const std::string& split);

  int64_t size() const { return history_.size(0); }
  int64_t dim() const { return history_.size(2); }
  const WindowOptions& options() const { return options_; }
  const std::vector<FeatureSlice>& features() const { return features_; }
  // Raw (unnormalised) windows: history [N, H, D], future [N, F, D].
  const torch::Tensor& history() const { return history_; }
  const torch::Tensor& future() const { return future_; }
  // Per window: episode index in the corpus, start state, branch, first future frame.
  const torch::Tensor& episode() const { return episode_; }
  const torch::Tensor& start_state() const { return start_state_; }
  const torch::Tensor& branch() const { return branch_; }
  const torch::Tensor& t0() const { return t0_; }

  // Statistics of this dataset's windows (compute them on the training split).
  WindowStats compute_stats() const;

 private:
  WindowOptions options_;
  std::vector<FeatureSlice> features_;
  torch::Tensor history_, future_, episode_, start_state_, branch_, t0_;
};

// Normalisation helpers. history [B, H, D] -> (h - mean) / std; future -> (f - last) / delta_std
// with `last` the final history frame; and back.
torch::Tensor normalize_history(const torch::Tensor& history, const WindowStats& s);
torch::Tensor normalize_future(const torch::Tensor& future, const torch::Tensor& history,
                               const WindowStats& s);
torch::Tensor denormalize_future(const torch::Tensor& z, const torch::Tensor& history,
                                 const WindowStats& s);

}  // namespace ebm::trajectory
