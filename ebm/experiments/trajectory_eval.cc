#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/eval/trajectory_metrics.h"
#include "ebm/experiments/trajectory_internal.h"
#include "ebm/report/progress.h"

namespace ebm::experiments::traj {

namespace {

// K futures of `horizon` frames for each history (raw features [N, H, D]) -> [N, K, horizon, D],
// chaining windows of F frames: each next history is the last H frames so far.
torch::Tensor predict(const std::string& method, Models& m, const TrajConfig& c,
                      const torch::Tensor& history, int64_t k, torch::Device device) {
  if (method == "ebm" || method == "ebm_experts") {
    m.generator->set_limit_weight(method == "ebm" ? 0.0 : c.limit_weight);
    m.generator->set_kinematic_weight(method == "ebm" ? 0.0 : c.kinematic_weight);
    return m.generator->sample(history, k, c.horizon, c.eval_langevin_steps);
  }
  torch::NoGradGuard no_grad;
  const auto out = chain_windows(history.repeat_interleave(k, 0).to(device), c.horizon,
                                 c.windows.future, [&](const torch::Tensor& hist) {
                                   const auto hn = trajectory::normalize_history(hist, m.stats);
                                   const auto z = method == "fc" ? m.fc->forward(hn)
                                                                 : m.mdn->sample(hn, 1).squeeze(1);
                                   return trajectory::denormalize_future(
                                       decode_future(z, net_options(c, m.dim)), hist, m.stats);
                                 });
  return out.to(torch::kCPU).view({history.size(0), k, c.horizon, history.size(2)});
}

// Branches share their first `prefix` frames (rollout.prefix_steps, in frames): the history the
// methods see, which must hold at least one window's history.
int64_t shared_prefix_frames(const TrajConfig& c) {
  const int64_t prefix = (c.record.prefix_steps + c.record.decimation - 1) / c.record.decimation;
  if (prefix < c.windows.history) {
    throw std::runtime_error("evaluation needs branches that share at least windows.history = " +
                             std::to_string(c.windows.history) +
                             " frames: set rollout.prefix_steps >= " +
                             std::to_string(c.windows.history * c.record.decimation));
  }
  return prefix;
}

// A held-out start state and its branches (corpus indices, branch 0 first).
struct HeldOutState {
  uint32_t id = 0;
  std::vector<size_t> episodes;
};

// Validation start states with 2 or more branches long enough for the horizon, at most
// eval.max_states of them.
std::vector<HeldOutState> held_out_states(const TrajConfig& c,
                                          const trajectory::TrajectoryCorpus& corpus,
                                          int64_t prefix) {
  std::map<uint32_t, std::vector<size_t>> by_state;
  // Branch order, not file order: each state's first episode is branch 0, the recorded
  // continuation the errors are measured against.
  for (const size_t i : corpus.branch_order()) {
    const auto& e = corpus.episodes()[i];
    if (trajectory::is_validation_state(e.start_state_id, c.windows.val_fraction) &&
        e.num_frames >= prefix + c.horizon) {
      by_state[e.start_state_id].push_back(i);
    }
  }
  std::vector<HeldOutState> states;
  for (auto& [s, eps] : by_state) {
    if (eps.size() >= 2 && static_cast<int64_t>(states.size()) < c.max_eval_states)
      states.push_back({s, eps});
  }
  if (states.empty()) {
    throw std::runtime_error("no validation start state has 2 or more branches of " +
                             std::to_string(prefix + c.horizon) +
                             " frames; record more start states or branches");
  }
  return states;
}

// Reads an episode's frames [a, b) as window features [b - a, D] or as qpos [b - a, nq].
class EpisodeFrames {
 public:
  EpisodeFrames(const TrajConfig& c, const trajectory::FrameLayout& layout, int64_t nq)
      : layout_(layout),
        frame_size_(layout.frame_size()),
        qpos_offset_(*layout.offset("qpos")),
        nq_(nq) {
    for (const auto& t : c.windows.features)
      features_.push_back(trajectory::parse_feature(t, layout));
  }
  torch::Tensor features(const trajectory::Episode& e, int64_t a, int64_t b) const {
    return trajectory::episode_features(e, layout_, features_, a, b);
  }
  torch::Tensor qpos(const trajectory::Episode& e, int64_t a, int64_t b) const {
    auto out = torch::empty({b - a, nq_}, torch::kFloat64);
    double* o = out.data_ptr<double>();
    for (int64_t t = a; t < b; ++t) {
      for (int64_t k = 0; k < nq_; ++k)
        *o++ = e.data(static_cast<int>(t * frame_size_ + qpos_offset_ + k));
    }
    return out;
  }

 private:
  const trajectory::FrameLayout& layout_;
  std::vector<trajectory::FeatureSlice> features_;
  size_t frame_size_, qpos_offset_;
  int64_t nq_;
};

// The methods evaluated: the EBM composed with its experts only when one is configured and stored.
std::vector<std::string> eval_methods(const TrajConfig& c, const Models& models) {
  std::vector<std::string> methods = {"ebm", "fc", "mdn", "ground_truth"};
  if ((c.limit_weight > 0 && models.generator->has_limits()) ||
      (c.kinematic_weight > 0 && models.generator->has_kinematics())) {
    methods.push_back("ebm_experts");
  }
  return methods;
}

// What the methods are measured against at one held-out state.
struct StateTruth {
  torch::Tensor history;      // [1, H, D] features of the shared history
  torch::Tensor base_qpos;    // [nq] the last history frame
  torch::Tensor start_sites;  // [P, 3] the tracked sites there
  torch::Tensor paths;        // [B, T, P, 3] every branch's site paths; branch 0 is the recording
  std::vector<torch::Tensor> qpos, features;  // per branch: [T, nq], [T, D]
};

StateTruth state_truth(const TrajConfig& c, Physics& phys, const EpisodeFrames& frames,
                       const std::vector<trajectory::Episode>& branches, int64_t prefix) {
  StateTruth s;
  s.history = frames.features(branches[0], prefix - c.windows.history, prefix).unsqueeze(0);
  s.base_qpos = frames.qpos(branches[0], prefix - 1, prefix)[0];
  s.start_sites = site_paths(phys, s.base_qpos.unsqueeze(0))[0];
  std::vector<torch::Tensor> paths;
  for (const auto& b : branches) {
    s.qpos.push_back(frames.qpos(b, prefix, prefix + c.horizon));
    paths.push_back(site_paths(phys, s.qpos.back()));
    s.features.push_back(frames.features(b, prefix, prefix + c.horizon));
  }
  s.paths = torch::stack(paths);
  return s;
}

// One method's futures at one state: site paths [K, T, P, 3], the raw features [k, T, D] it
// predicted (undefined for the ground truth) and the feasibility of each future.
struct MethodFutures {
  torch::Tensor paths, predicted;
  std::vector<Feasibility> feasibility;
};

MethodFutures method_futures(const std::string& method, Models& models, const TrajConfig& c,
                             Physics& phys, const StateTruth& truth, const HeldOutState& state,
                             uint64_t seed, torch::Device device) {
  MethodFutures out;
  if (method == "ground_truth") {
    out.paths = truth.paths;
    for (size_t b = 0; b < truth.qpos.size(); ++b) {
      out.feasibility.push_back(feasibility(phys, truth.qpos[b], truth.features[b]));
    }
    return out;
  }
  const int64_t k = method == "fc" ? 1 : c.samples;
  // Every method draws from the same seed at each state: ebm and ebm_experts get the same chain
  // starts and noise (only the energy differs), and no method's numbers depend on how many random
  // numbers another one drew (the MDN's did, on the EBM's Langevin steps).
  torch::manual_seed(seed);
  out.predicted = predict(method, models, c, truth.history, k, device)[0];  // [k, T, D]
  if (!torch::isfinite(out.predicted).all().item<bool>()) {
    throw std::runtime_error(
        "method " + method + " produced non-finite futures from held-out state " +
        std::to_string(state.id) +
        (method == "ebm_experts"
             ? " (lower model.limit_weight, model.kinematic_weight or langevin.step_size)"
             : ""));
  }
  std::vector<torch::Tensor> ps;
  for (int64_t j = 0; j < k; ++j) {
    const auto q = to_qpos(phys, out.predicted[j], truth.base_qpos);
    ps.push_back(site_paths(phys, q));
    out.feasibility.push_back(feasibility(phys, q, out.predicted[j]));
  }
  out.paths = torch::stack(ps);
  // The FC net is deterministic: its K samples are K copies of one prediction.
  if (method == "fc") out.paths = out.paths.expand({c.samples, -1, -1, -1}).contiguous();
  return out;
}

// Adds one state's metrics of a method to its running sums.
void add_metrics(std::map<std::string, double>& m, const MethodFutures& f, const StateTruth& truth,
                 const TrajConfig& c) {
  const auto& paths = f.paths;
  const auto recorded = truth.paths[0];
  for (int64_t t : c.error_frames) {
    double e = 0;
    for (int64_t j = 0; j < paths.size(0); ++j) e += eval::error_at(paths[j], recorded, t);
    m["error_at_" + std::to_string(t)] += e / paths.size(0);
  }
  m["min_ade"] += eval::min_ade(paths, recorded);
  m["min_fde"] += eval::min_fde(paths, recorded);
  m["nearest_branch_ade"] += eval::nearest_branch_ade(paths, truth.paths);
  m["diversity"] += eval::diversity(paths);
  m["energy_distance"] += eval::energy_distance(paths, truth.paths);
  m["movement"] += eval::movement(paths, truth.start_sites);
  const Feasibility mean = mean_feasibility(f.feasibility);
  m["joint_limit_violation_rate"] += mean.limit_violation_rate;
  m["joint_limit_excess"] += mean.limit_excess;
  m["penetration"] += mean.penetration;
  if (mean.has_velocity) m["velocity_inconsistency"] += mean.velocity_inconsistency;
}

// The pictures of the first held-out state: paths.png (top-down site paths per method) and, when
// eval.render, frames.png (MuJoCo renderings of the truth, the FC prediction and two EBM samples).
// The EBM is shown as the main job samples it: composed with the experts when configured.
std::vector<std::string> first_state_pictures(const TrajConfig& c, Physics& phys,
                                              const StateTruth& truth,
                                              const std::map<std::string, MethodFutures>& futures,
                                              const std::string& run_dir) {
  std::vector<std::string> pictures;
  const bool composed = futures.count("ebm_experts") > 0;
  const std::string ebm_method = composed ? "ebm_experts" : "ebm";
  const std::string png = run_dir + "/paths.png";
  write_paths_png(png, {{"ground_truth", futures.at("ground_truth").paths},
                        {"fc", futures.at("fc").paths.narrow(0, 0, 1)},
                        {ebm_method, futures.at(ebm_method).paths},
                        {"mdn", futures.at("mdn").paths}});
  pictures.push_back(png);
  if (!c.render) return pictures;
  // Frames T = 0 (the last history frame) and every quarter of the horizon.
  std::vector<int64_t> ts = {0};
  for (int64_t q = 1; q <= 4; ++q) ts.push_back(std::max<int64_t>(1, c.horizon * q / 4));
  std::vector<std::string> columns;
  for (int64_t t : ts) columns.push_back("T=" + std::to_string(t));
  auto pick = [&](const torch::Tensor& qpos) {  // qpos [horizon, nq] -> [5, nq]
    std::vector<torch::Tensor> f;
    for (int64_t t : ts) f.push_back(t == 0 ? truth.base_qpos : qpos[t - 1]);
    return torch::stack(f);
  };
  const auto& ebm_pred = futures.at(ebm_method).predicted;
  const auto& fc_pred = futures.at("fc").predicted;
  const std::string ebm_name = composed ? "EBM + experts" : "EBM";
  std::vector<std::pair<std::string, torch::Tensor>> rows = {
      {"ground truth", pick(truth.qpos[0])},
      {"FC", pick(to_qpos(phys, fc_pred[0], truth.base_qpos))},
      {ebm_name + ", sample 1", pick(to_qpos(phys, ebm_pred[0], truth.base_qpos))},
      {ebm_name + ", sample 2", pick(to_qpos(phys, ebm_pred[1], truth.base_qpos))}};
  const auto lookat = truth.start_sites.mean(0);
  const double spread = (truth.paths - lookat.view({1, 1, 1, 3})).norm(2, -1).max().item<double>();
  const std::string frames_png = run_dir + "/frames.png";
  if (render_frames(c, phys, run_dir + "/render", frames_png, rows, columns, lookat,
                    std::max(0.2, 1.5 * spread))) {
    pictures.push_back(frames_png);
  }
  return pictures;
}

}  // namespace

EvalResult evaluate(const TrajConfig& c, const std::string& run_dir, torch::Device device,
                    bool quiet) {
  const trajectory::TrajectoryCorpus corpus(run_dir + "/trajectories");
  Models models = load_models(c, run_dir, device);
  Physics phys = make_physics(c, corpus.layout());
  const int64_t prefix = shared_prefix_frames(c);
  const auto states = held_out_states(c, corpus, prefix);
  const EpisodeFrames frames(c, corpus.layout(), phys.model->nq);
  const auto methods = eval_methods(c, models);
  MethodMetrics sum;
  EvalResult res;
  torch::manual_seed(c.seed + 1);
  report::Progress progress("eval", static_cast<int64_t>(states.size()));
  for (size_t si = 0; si < states.size(); ++si) {
    std::vector<trajectory::Episode> branches;
    for (size_t i : states[si].episodes) branches.push_back(corpus.read(i));
    const StateTruth truth = state_truth(c, phys, frames, branches, prefix);
    std::map<std::string, MethodFutures> futures;
    for (const auto& method : methods) {
      futures[method] =
          method_futures(method, models, c, phys, truth, states[si], c.seed + 2 + si, device);
      add_metrics(sum[method], futures[method], truth, c);
    }
    if (si == 0) res.pictures = first_state_pictures(c, phys, truth, futures, run_dir);
    if (!quiet) progress.update(static_cast<int64_t>(si + 1));
  }
  progress.finish();
  for (auto& [method, m] : sum) {
    for (auto& [k, v] : m) res.metrics[method][k] = v / static_cast<double>(states.size());
  }
  res.states = static_cast<int64_t>(states.size());
  return res;
}

}  // namespace ebm::experiments::traj
