#include "datasets/trajectory/windows.h"

#include <torch/torch.h>

#include <regex>

namespace ebm::trajectory {

std::string FeatureSlice::text() const {
  return field + "[" + std::to_string(begin) + ":" + std::to_string(end) + "]";
}

FeatureSlice parse_feature(const std::string& text, const FrameLayout& layout) {
  static const std::regex kFeature(R"(([A-Za-z_:0-9.]+?)(\[(\d+):(\d+)\])?)");
  std::smatch m;
  if (!std::regex_match(text, m, kFeature)) {
    throw TrajectoryError("feature '" + text + "': expected 'field' or 'field[a:b]'");
  }
  FeatureSlice f;
  f.field = m[1];
  if (!layout.offset(f.field)) {
    std::string names;
    for (const auto& [n, s] : layout.fields()) names += (names.empty() ? "" : ", ") + n;
    throw TrajectoryError("feature '" + text + "': the recording has no field '" + f.field +
                          "' (fields: " + names + ")");
  }
  const auto size = static_cast<int64_t>(layout.size(f.field));
  f.begin = m[2].matched ? std::stoll(m[3]) : 0;
  f.end = m[2].matched ? std::stoll(m[4]) : size;
  if (f.begin >= f.end || f.end > size) {
    throw TrajectoryError("feature '" + text + "': range outside the field's " +
                          std::to_string(size) + " elements");
  }
  return f;
}

torch::Tensor episode_features(const Episode& episode, const FrameLayout& layout,
                               const std::vector<FeatureSlice>& features, int64_t begin,
                               int64_t end) {
  if (begin < 0 || end < begin || end > episode.num_frames()) {
    throw TrajectoryError("episode " + std::to_string(episode.episode_id()) + ": frames [" +
                          std::to_string(begin) + ", " + std::to_string(end) + ") outside its " +
                          std::to_string(episode.num_frames()));
  }
  int64_t dim = 0;
  for (const auto& f : features) dim += f.end - f.begin;
  auto out = torch::empty({end - begin, dim}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  const size_t fs = layout.frame_size();
  for (int64_t t = begin; t < end; ++t) {
    const float* frame = episode.data().data() + t * fs;
    for (const auto& f : features) {
      const size_t off = *layout.offset(f.field);
      for (int64_t k = f.begin; k < f.end; ++k) *o++ = frame[off + k];
    }
  }
  return out;
}

WindowDataset::WindowDataset(const TrajectoryCorpus& corpus, const WindowOptions& o,
                             const std::string& split)
    : options_(o) {
  if (o.history < 1 || o.future < 1 || o.stride < 1) {
    throw TrajectoryError("windows: history, future and stride must be >= 1");
  }
  if (split != "train" && split != "val" && split != "all") {
    throw TrajectoryError("windows: split must be train, val or all, got '" + split + "'");
  }
  if (o.features.empty()) throw TrajectoryError("windows: no features chosen");
  int64_t dim = 0;
  for (const auto& text : o.features) {
    features_.push_back(parse_feature(text, corpus.layout()));
    dim += features_.back().end - features_.back().begin;
  }
  const int64_t len = o.history + o.future;
  std::vector<torch::Tensor> windows;
  std::vector<int64_t> ep, ss, br, t0s;
  // Episodes in branch order, not file order: the windows' order decides the training batches.
  for (const size_t i : corpus.branch_order()) {
    const auto& info = corpus.episodes()[i];
    const bool val = is_validation_state(info.start_state_id, o.val_fraction);
    if ((split == "train" && val) || (split == "val" && !val)) continue;
    if (info.num_frames < len) continue;
    const Episode e = corpus.read(i);
    const int64_t t_count = e.num_frames();
    const auto feats = episode_features(e, corpus.layout(), features_, 0, t_count);
    for (int64_t s = 0; s + len <= t_count; s += o.stride) {
      windows.push_back(feats.narrow(0, s, len));
      ep.push_back(static_cast<int64_t>(i));
      ss.push_back(info.start_state_id);
      br.push_back(info.branch_id);
      t0s.push_back(s + o.history);
    }
  }
  if (windows.empty()) {
    throw TrajectoryError("windows: no episode of the " + split + " split has the " +
                          std::to_string(len) + " frames a window needs (history " +
                          std::to_string(o.history) + " + future " + std::to_string(o.future) +
                          ")");
  }
  auto all = torch::stack(windows);
  history_ = all.narrow(1, 0, o.history).contiguous();
  future_ = all.narrow(1, o.history, o.future).contiguous();
  episode_ = torch::tensor(ep, torch::kLong);
  start_state_ = torch::tensor(ss, torch::kLong);
  branch_ = torch::tensor(br, torch::kLong);
  t0_ = torch::tensor(t0s, torch::kLong);
}

WindowStats WindowDataset::compute_stats() const {
  WindowStats s;
  const auto states = torch::cat({history_.flatten(0, 1), future_.flatten(0, 1)}, 0);
  s.mean = states.mean(0);
  s.std = states.std(0).clamp_min(1e-6);
  const auto last = history_.select(1, history_.size(1) - 1).unsqueeze(1);
  s.delta_std = (future_ - last).flatten(0, 1).pow(2).mean(0).sqrt().clamp_min(1e-6);
  return s;
}

torch::Tensor normalize_history(const torch::Tensor& history, const WindowStats& s) {
  return (history - s.mean.to(history.device())) / s.std.to(history.device());
}

torch::Tensor normalize_future(const torch::Tensor& future, const torch::Tensor& history,
                               const WindowStats& s) {
  const auto last = history.select(1, history.size(1) - 1).unsqueeze(1);
  return (future - last) / s.delta_std.to(future.device());
}

torch::Tensor denormalize_future(const torch::Tensor& z, const torch::Tensor& history,
                                 const WindowStats& s) {
  const auto last = history.select(1, history.size(1) - 1).unsqueeze(1);
  return z * s.delta_std.to(z.device()) + last;
}

}  // namespace ebm::trajectory
