// Goal-directed futures: the EBM composed with a goal energy (WeightedSumEnergy, the one Langevin
// sampler) against baselines that cannot compose: the MDN's best of N samples by goal distance
// and the FC prediction. Goals are reachable by construction: where a true branch of the held-out
// state takes the goal site.
#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/eval/trajectory_metrics.h"
#include "ebm/experiments/trajectory_internal.h"

namespace ebm::experiments::traj {

namespace {

// Where a qpos frame [nq] puts a site [3].
torch::Tensor site_position(Physics& p, int site, const torch::Tensor& qpos) {
  const mjModel* m = p.model.get();
  mjData* d = p.data.get();
  const auto q = qpos.to(torch::kFloat64).contiguous();
  std::memcpy(d->qpos, q.data_ptr<double>(), sizeof(mjtNum) * m->nq);
  mj_kinematics(m, d);
  return torch::tensor(
      {d->site_xpos[3 * site], d->site_xpos[3 * site + 1], d->site_xpos[3 * site + 2]},
      torch::kFloat64);
}

// Distance of the goal site to the target at the last frame of each future [k, T, D] -> [k].
std::vector<double> goal_distances(Physics& p, int site, const torch::Tensor& futures,
                                   const StateTruth& truth, const torch::Tensor& target) {
  std::vector<double> out;
  for (int64_t j = 0; j < futures.size(0); ++j) {
    const auto q = to_qpos(p, futures[j].narrow(0, futures.size(1) - 1, 1), truth.base_qpos);
    out.push_back((site_position(p, site, q[0]) - target).norm().item<double>());
  }
  return out;
}

// The plausibility of futures [k, T, D] (goal horizon T) and their goal distances, as one goal's
// values of a method (means over the futures).
void add_goal_values(std::map<std::string, std::vector<double>>& m, Physics& p,
                     const StateTruth& truth, const torch::Tensor& futures,
                     const std::vector<double>& distances) {
  std::vector<torch::Tensor> features, qpos;
  for (int64_t j = 0; j < futures.size(0); ++j) {
    features.push_back(futures[j]);
    qpos.push_back(to_qpos(p, futures[j], truth.base_qpos));
  }
  const MethodFutures f = measure_futures(p, truth, features, qpos);
  const Feasibility mean = mean_feasibility(f.feasibility);
  double dist = 0;
  for (double d : distances) dist += d / static_cast<double>(distances.size());
  m["goal_distance"].push_back(dist);
  m["nearest_branch_ade"].push_back(
      eval::nearest_branch_ade(f.paths, truth.paths.narrow(1, 0, futures.size(1))));
  m["joint_limit_violation_rate"].push_back(mean.limit_violation_rate);
  m["penetration"].push_back(mean.penetration);
  if (mean.has_velocity) m["velocity_inconsistency"].push_back(mean.velocity_inconsistency);
  if (f.resim_distance.defined()) m["resim_ade"].push_back(f.resim_distance.mean().item<double>());
}

}  // namespace

void goal_state(const TrajConfig& c, Models& models, Physics& phys, const StateTruth& truth,
                uint64_t seed, torch::Device device, UnitValues& values) {
  const mjModel* m = phys.model.get();
  const int site = mj_name2id(m, mjOBJ_SITE, c.goal_site.c_str());
  if (site < 0)
    throw std::runtime_error("eval.goal.site: the scene has no site '" + c.goal_site + "'");
  // The goal: where a true branch (chosen by the state's seed) has the site at the goal horizon.
  std::mt19937_64 rng(seed);
  const auto branch = static_cast<int64_t>(rng() % truth.qpos.size());
  const auto target = site_position(phys, site, truth.qpos[branch][c.goal_horizon - 1]);
  const auto [jacobian, point] =
      site_feature_jacobian(phys, site, truth.base_qpos, truth.history.size(2));
  const auto state = truth.history[0][-1];
  auto& gen = *models.generator;

  // The EBM with its experts, without and with the goal, from the same chain starts and noise.
  torch::manual_seed(seed);
  const auto free =
      predict("ebm_experts", models, c, truth.history, c.samples, c.goal_horizon, device)[0];
  gen.set_goal(jacobian, state, point, target, c.goal_weight);
  torch::manual_seed(seed);
  torch::Tensor steered;
  try {
    steered =
        predict("ebm_experts", models, c, truth.history, c.samples, c.goal_horizon, device)[0];
  } catch (...) {
    gen.clear_goal();
    throw;
  }
  gen.clear_goal();
  add_goal_values(values["ebm_goal"], phys, truth, steered,
                  goal_distances(phys, site, steered, truth, target));
  add_goal_values(values["ebm_experts"], phys, truth, free,
                  goal_distances(phys, site, free, truth, target));

  // The MDN: the best of N samples by goal distance.
  torch::manual_seed(seed);
  const auto mdn =
      predict("mdn", models, c, truth.history, c.goal_mdn_samples, c.goal_horizon, device)[0];
  const auto mdn_dist = goal_distances(phys, site, mdn, truth, target);
  const auto best = std::min_element(mdn_dist.begin(), mdn_dist.end()) - mdn_dist.begin();
  add_goal_values(values["mdn_best_of_n"], phys, truth, mdn.narrow(0, best, 1),
                  {mdn_dist[static_cast<size_t>(best)]});
  const auto fc = predict("fc", models, c, truth.history, 1, c.goal_horizon, device)[0];
  add_goal_values(values["fc"], phys, truth, fc, goal_distances(phys, site, fc, truth, target));
  const auto start = site_position(phys, site, truth.base_qpos);
  values["start"]["goal_distance"].push_back((start - target).norm().item<double>());
}

}  // namespace ebm::experiments::traj
