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

void Curves::add(const std::string& method, const std::string& metric, size_t frame, double value) {
  auto& s = sum[method][metric];
  auto& n = count[method][metric];
  if (s.size() <= frame) {
    s.resize(frame + 1, 0.0);
    n.resize(frame + 1, 0.0);
  }
  s[frame] += value;
  n[frame] += 1;
}

std::vector<double> Curves::mean(const std::string& method, const std::string& metric) const {
  const auto& s = sum.at(method).at(metric);
  const auto& n = count.at(method).at(metric);
  std::vector<double> out;
  for (size_t t = 0; t < s.size() && n[t] > 0; ++t) out.push_back(s[t] / n[t]);
  return out;
}

// Chaining windows of F frames: each next history is the last H frames so far.
torch::Tensor predict(const std::string& method, Models& m, const TrajConfig& c,
                      const torch::Tensor& history, int64_t k, int64_t frames,
                      torch::Device device) {
  if (method == "ebm" || method == "ebm_experts") {
    m.generator->set_limit_weight(method == "ebm" ? 0.0 : c.limit_weight);
    m.generator->set_kinematic_weight(method == "ebm" ? 0.0 : c.kinematic_weight);
    m.generator->set_limit_projection(c.project_limits);
    return m.generator->sample(history, k, frames, c.eval_langevin_steps);
  }
  torch::NoGradGuard no_grad;
  const auto out = chain_windows(history.repeat_interleave(k, 0).to(device), frames,
                                 c.windows.future, [&](const torch::Tensor& hist) {
                                   const auto hn = trajectory::normalize_history(hist, m.stats);
                                   const auto z = method == "fc" ? m.fc->forward(hn)
                                                                 : m.mdn->sample(hn, 1).squeeze(1);
                                   return trajectory::denormalize_future(
                                       decode_future(z, net_options(c, m.dim)), hist, m.stats);
                                 });
  return out.to(torch::kCPU).view({history.size(0), k, frames, history.size(2)});
}

namespace {

// Mean over sites of the distance between two site paths [T, P, 3] per frame -> [T].
torch::Tensor site_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).pow(2).sum(-1).sqrt().mean(-1);
}

}  // namespace

MethodFutures measure_futures(Physics& phys, const StateTruth& truth,
                              const std::vector<torch::Tensor>& features,
                              const std::vector<torch::Tensor>& qpos) {
  MethodFutures out;
  std::vector<torch::Tensor> paths, resim;
  const bool replay = phys.can_resimulate() && truth.start.qvel.defined();
  const auto simulated =
      replay ? resimulate_all(phys, truth.start, features) : std::vector<torch::Tensor>();
  for (size_t j = 0; j < qpos.size(); ++j) {
    paths.push_back(site_paths(phys, qpos[j]));
    out.feasibility.push_back(feasibility(phys, qpos[j], features[j]));
    if (replay) resim.push_back(site_distance(site_paths(phys, simulated[j]), paths.back()));
  }
  out.paths = torch::stack(paths);
  if (!resim.empty()) out.resim_distance = torch::stack(resim);
  return out;
}

namespace {

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
  EpisodeFrames(const TrajConfig& c, const trajectory::FrameLayout& layout)
      : layout_(layout), frame_size_(layout.frame_size()) {
    for (const auto& t : c.windows.features)
      features_.push_back(trajectory::parse_feature(t, layout));
  }
  torch::Tensor features(const trajectory::Episode& e, int64_t a, int64_t b) const {
    return trajectory::episode_features(e, layout_, features_, a, b);
  }
  // A recorded field's frames [b - a, size] (float64); undefined when it was not recorded.
  torch::Tensor field(const trajectory::Episode& e, const std::string& name, int64_t a,
                      int64_t b) const {
    const auto offset = layout_.offset(name);
    if (!offset) return {};
    const auto size = static_cast<int64_t>(layout_.size(name));
    auto out = torch::empty({b - a, size}, torch::kFloat64);
    double* o = out.data_ptr<double>();
    for (int64_t t = a; t < b; ++t) {
      for (int64_t k = 0; k < size; ++k)
        *o++ = e.data(static_cast<int>(t * frame_size_ + *offset + k));
    }
    return out;
  }
  torch::Tensor qpos(const trajectory::Episode& e, int64_t a, int64_t b) const {
    return field(e, "qpos", a, b);
  }

 private:
  const trajectory::FrameLayout& layout_;
  std::vector<trajectory::FeatureSlice> features_;
  size_t frame_size_;
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

StateTruth state_truth(const TrajConfig& c, Physics& phys, const EpisodeFrames& frames,
                       const std::vector<trajectory::Episode>& branches, int64_t prefix) {
  StateTruth s;
  s.history = frames.features(branches[0], prefix - c.windows.history, prefix).unsqueeze(0);
  s.base_qpos = frames.qpos(branches[0], prefix - 1, prefix)[0];
  s.start.qpos = s.base_qpos;
  const auto qvel = frames.field(branches[0], "qvel", prefix - 1, prefix);
  const auto ctrl = frames.field(branches[0], "ctrl", prefix - 1, prefix);
  if (qvel.defined() && ctrl.defined()) s.start = {s.base_qpos, qvel[0], ctrl[0]};
  s.start_sites = site_paths(phys, s.base_qpos.unsqueeze(0))[0];
  std::vector<torch::Tensor> paths, long_paths;
  int64_t long_frames = c.long_horizon;
  for (const auto& b : branches)
    long_frames = std::min(long_frames, static_cast<int64_t>(b.num_frames()) - prefix);
  for (const auto& b : branches) {
    s.qpos.push_back(frames.qpos(b, prefix, prefix + c.horizon));
    paths.push_back(site_paths(phys, s.qpos.back()));
    s.features.push_back(frames.features(b, prefix, prefix + c.horizon));
    if (long_frames > 0)
      long_paths.push_back(site_paths(phys, frames.qpos(b, prefix, prefix + long_frames)));
  }
  s.paths = torch::stack(paths);
  if (!long_paths.empty()) s.long_paths = torch::stack(long_paths);
  return s;
}

// A method's futures from one state, `predicted` [k, T, D] (unused for the ground truth).
MethodFutures method_futures(const std::string& method, const torch::Tensor& predicted,
                             const TrajConfig& c, Physics& phys, const StateTruth& truth,
                             const HeldOutState& state) {
  if (method == "ground_truth") return measure_futures(phys, truth, truth.features, truth.qpos);
  const int64_t k = predicted.size(0);
  if (!torch::isfinite(predicted).all().item<bool>()) {
    throw std::runtime_error(
        "method " + method + " produced non-finite futures from held-out state " +
        std::to_string(state.id) +
        (method == "ebm_experts"
             ? " (lower model.limit_weight, model.kinematic_weight or langevin.step_size)"
             : ""));
  }
  std::vector<torch::Tensor> features, qpos;
  for (int64_t j = 0; j < k; ++j) {
    features.push_back(predicted[j]);
    qpos.push_back(to_qpos(phys, predicted[j], truth.base_qpos));
  }
  MethodFutures out = measure_futures(phys, truth, features, qpos);
  out.predicted = predicted;
  // The FC net is deterministic: its K samples are K copies of one prediction.
  if (method == "fc") out.paths = out.paths.expand({c.samples, -1, -1, -1}).contiguous();
  return out;
}

// One state's metrics of a method, appended to its values.
void add_state_values(std::map<std::string, std::vector<double>>& m, const MethodFutures& f,
                      const StateTruth& truth, const TrajConfig& c) {
  const auto& paths = f.paths;
  const auto recorded = truth.paths[0];
  for (int64_t t : c.error_frames) {
    double e = 0;
    for (int64_t j = 0; j < paths.size(0); ++j) e += eval::error_at(paths[j], recorded, t);
    m["error_at_" + std::to_string(t)].push_back(e / paths.size(0));
  }
  m["min_ade"].push_back(eval::min_ade(paths, recorded));
  m["min_fde"].push_back(eval::min_fde(paths, recorded));
  m["nearest_branch_ade"].push_back(eval::nearest_branch_ade(paths, truth.paths));
  m["diversity"].push_back(eval::diversity(paths));
  m["energy_distance"].push_back(eval::energy_distance(paths, truth.paths));
  m["movement"].push_back(eval::movement(paths, truth.start_sites));
  const Feasibility mean = mean_feasibility(f.feasibility);
  m["joint_limit_violation_rate"].push_back(mean.limit_violation_rate);
  m["joint_limit_excess"].push_back(mean.limit_excess);
  m["penetration"].push_back(mean.penetration);
  if (mean.has_velocity) m["velocity_inconsistency"].push_back(mean.velocity_inconsistency);
  if (f.resim_distance.defined()) {
    m["resim_ade"].push_back(f.resim_distance.mean().item<double>());
    m["resim_fde"].push_back(f.resim_distance.select(1, -1).mean().item<double>());
  }
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
  const auto fc_qpos = to_qpos(phys, fc_pred[0], truth.base_qpos);
  const auto ebm_qpos = to_qpos(phys, ebm_pred[0], truth.base_qpos);
  RenderRequest r;
  r.rows = {{"ground truth", pick(truth.qpos[0])},
            {"FC", pick(fc_qpos)},
            {ebm_name + ", sample 1", pick(ebm_qpos)},
            {ebm_name + ", sample 2", pick(to_qpos(phys, ebm_pred[1], truth.base_qpos))}};
  r.columns = columns;
  // The animation: every frame from the last history frame on, the three side by side.
  auto from_start = [&](const torch::Tensor& q) {
    return torch::cat({truth.base_qpos.unsqueeze(0), q}, 0);
  };
  r.animation = {{"ground truth", from_start(truth.qpos[0])},
                 {"EBM", from_start(ebm_qpos)},
                 {"FC", from_start(fc_qpos)}};
  r.lookat = truth.start_sites.mean(0);
  const double spread =
      (truth.paths - r.lookat.view({1, 1, 1, 3})).norm(2, -1).max().item<double>();
  r.distance = std::max(0.2, 1.5 * spread);
  r.png = run_dir + "/frames.png";
  r.gif = run_dir + "/futures.gif";
  if (render_frames(c, phys, run_dir + "/render", r)) {
    pictures.push_back(r.png);
    pictures.push_back(r.gif);
  }
  return pictures;
}

}  // namespace

std::map<std::string, torch::Tensor> predict_all(const TrajConfig& c, Models& models,
                                                 const std::vector<std::string>& methods,
                                                 const torch::Tensor& histories, int64_t k,
                                                 int64_t frames, uint64_t seed,
                                                 torch::Device device) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& method : methods) {
    if (method == "ground_truth") continue;
    torch::manual_seed(seed);
    out[method] = predict(method, models, c, histories, method == "fc" ? 1 : k, frames, device);
  }
  return out;
}

EvalResult evaluate(const TrajConfig& c, const std::string& run_dir, torch::Device device,
                    bool quiet) {
  const trajectory::TrajectoryCorpus corpus(run_dir + "/trajectories");
  Models models = load_models(c, run_dir, device);
  Physics phys = make_physics(c, corpus.layout());
  const int64_t prefix = shared_prefix_frames(c);
  const auto states = held_out_states(c, corpus, prefix);
  const EpisodeFrames frames(c, corpus.layout());
  const auto methods = eval_methods(c, models);
  if (phys.can_resimulate() && c.record.policy.action_repeat % c.record.decimation != 0) {
    fmt::print(stderr,
               "warning: re-simulation holds each frame's controls for decimation = {} physics "
               "steps, but the recording changed them every policy.action_repeat = {} steps: "
               "resim_* includes that mismatch (the recorded branches do not replay to 0)\n",
               c.record.decimation, c.record.policy.action_repeat);
  }
  std::vector<StateTruth> truths;
  std::vector<torch::Tensor> histories;
  for (const auto& state : states) {
    std::vector<trajectory::Episode> branches;
    for (size_t i : state.episodes) branches.push_back(corpus.read(i));
    truths.push_back(state_truth(c, phys, frames, branches, prefix));
    histories.push_back(truths.back().history);
  }
  const auto history = torch::cat(histories);  // [S, H, D]
  EvalResult res;
  const auto predicted =
      predict_all(c, models, methods, history, c.samples, c.horizon, c.seed + 2, device);
  std::map<std::string, torch::Tensor> long_predicted;
  if (c.long_horizon > 0) {
    long_predicted = predict_all(c, models, methods, history, c.long_samples, c.long_horizon,
                                 c.seed + 3, device);
  }
  report::Progress progress("eval", static_cast<int64_t>(states.size()));
  for (size_t si = 0; si < states.size(); ++si) {
    const auto& truth = truths[si];
    const auto i = static_cast<int64_t>(si);
    std::map<std::string, MethodFutures> futures;
    for (const auto& method : methods) {
      futures[method] = method_futures(
          method, predicted.count(method) ? predicted.at(method)[i] : torch::Tensor(), c, phys,
          truth, states[si]);
      add_state_values(res.per_state[method], futures[method], truth, c);
    }
    if (si == 0) res.pictures = first_state_pictures(c, phys, truth, futures, run_dir);
    for (const auto& [method, all] : long_predicted)
      long_horizon_state(phys, method, all[i], truth, res.curves, res.per_state[method]);
    if (c.goal_weight > 0) goal_state(c, models, phys, truth, c.seed + 4 + si, device, res.goals);
    if (!quiet) progress.update(i + 1);
  }
  progress.finish();
  for (const auto& [method, m] : res.per_state) {
    for (const auto& [k, v] : m) {
      double sum = 0;
      for (double x : v) sum += x;
      res.metrics[method][k] = sum / static_cast<double>(v.size());
    }
  }
  if (c.long_horizon > 0) {
    for (const auto& p : write_long_horizon_charts(res.curves, run_dir)) res.pictures.push_back(p);
  }
  res.states = static_cast<int64_t>(states.size());
  return res;
}

}  // namespace ebm::experiments::traj
