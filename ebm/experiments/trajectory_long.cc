// Long horizons: futures chained far beyond one window, measured frame by frame, so that a method
// that explodes (non-finite values, joints far outside their ranges) or freezes shows where.
#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ebm/experiments/trajectory_internal.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"

namespace ebm::experiments::traj {

namespace {

// The long-horizon metrics, in chart order, with their units.
const std::vector<std::pair<std::string, std::string>> kLongMetrics = {
    {"diverged", "share of futures diverged by then"},
    {"joint_limit_violation_rate", "share of limited joints outside their range"},
    {"penetration", "deepest contact penetration (m)"},
    {"velocity_inconsistency", "position-velocity mismatch (rad/s, m/s)"},
    {"nearest_branch_distance", "distance to the nearest true branch (m)"},
};

// The frame at which qpos [T, nq] first diverges: a non-finite coordinate, or a limited joint
// beyond its range by more than the range's width. T when it never does.
int64_t divergence_frame(const mjModel* m, const torch::Tensor& qpos) {
  const auto q = qpos.to(torch::kFloat64).contiguous();
  const double* v = q.data_ptr<double>();
  for (int64_t t = 0; t < q.size(0); ++t) {
    for (int64_t k = 0; k < m->nq; ++k) {
      if (!std::isfinite(v[t * m->nq + k])) return t;
    }
    for (int j = 0; j < m->njnt; ++j) {
      if (!m->jnt_limited[j] || (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE))
        continue;
      const double x = v[t * m->nq + m->jnt_qposadr[j]], lo = m->jnt_range[2 * j],
                   hi = m->jnt_range[2 * j + 1];
      if (x < lo - (hi - lo) || x > hi + (hi - lo)) return t;
    }
  }
  return q.size(0);
}

// One future's frame-by-frame metrics (until it diverges) into the curves, and their means over
// its frames (the state's value for the method) into `means`.
void measure_future(Physics& p, const std::string& method, const torch::Tensor& qpos,
                    const torch::Tensor& feats, const StateTruth& truth, Curves& curves,
                    std::map<std::string, double>& means) {
  const mjModel* m = p.model.get();
  const int64_t frames = qpos.size(0);
  const int64_t stop = divergence_frame(m, qpos);
  for (int64_t t = 0; t < frames; ++t) curves.add(method, "diverged", t, t >= stop ? 1.0 : 0.0);
  means["diverged"] += stop < frames ? 1.0 : 0.0;
  if (stop == 0) return;
  const auto q = qpos.narrow(0, 0, stop).to(torch::kFloat64).contiguous();
  const auto f = feats.narrow(0, 0, stop).to(torch::kFloat64);
  const auto sites = site_paths(p, q);  // [stop, P, 3]
  const int64_t branch_frames = truth.long_paths.defined() ? truth.long_paths.size(1) : 0;
  std::map<std::string, double> sum;
  for (int64_t t = 0; t < stop; ++t) {
    const double limits = joint_limit_violations(m, q.narrow(0, t, 1)).rate;
    const double pen = frame_penetration(p, q.data_ptr<double>() + t * m->nq);
    curves.add(method, "joint_limit_violation_rate", t, limits);
    curves.add(method, "penetration", t, pen);
    sum["joint_limit_violation_rate"] += limits / stop;
    sum["penetration"] += pen / stop;
    if (t < branch_frames) {
      const auto d = (truth.long_paths.select(1, t) - sites[t].unsqueeze(0)).pow(2).sum(-1).sqrt();
      const double nearest = d.mean(-1).min().item<double>();
      curves.add(method, "nearest_branch_distance", t, nearest);
      sum["nearest_branch_distance"] += nearest / std::min(stop, branch_frames);
    }
  }
  if (!p.pos_vel_cols.empty() && stop >= 2) {
    // (q[t+1] - q[t]) / dt vs (v[t] + v[t+1]) / 2, mean over the position-velocity pairs.
    std::vector<int64_t> pc, vc;
    for (const auto& [a, b] : p.pos_vel_cols) pc.push_back(a), vc.push_back(b);
    const auto r = kinematic_residual(f.unsqueeze(0), torch::tensor(pc), torch::tensor(vc),
                                      p.frame_dt)[0]
                       .abs()
                       .mean(1);  // [stop - 1]
    for (int64_t t = 0; t + 1 < stop; ++t)
      curves.add(method, "velocity_inconsistency", t + 1, r[t].item<double>());
    sum["velocity_inconsistency"] += r.mean().item<double>();
  }
  for (const auto& [k, v] : sum) means[k] += v;
}

}  // namespace

void long_horizon_state(Physics& phys, const std::string& method, const torch::Tensor& predicted,
                        const StateTruth& truth, Curves& curves,
                        std::map<std::string, std::vector<double>>& values) {
  const int64_t k = predicted.size(0);
  std::map<std::string, double> means;
  for (int64_t j = 0; j < k; ++j) {
    const auto qpos = to_qpos(phys, predicted[j], truth.base_qpos);
    measure_future(phys, method, qpos, predicted[j], truth, curves, means);
  }
  for (const auto& [name, v] : means) values["long_" + name].push_back(v / k);
}

std::vector<std::string> write_long_horizon_charts(const Curves& curves,
                                                   const std::string& run_dir) {
  std::vector<std::string> out;
  for (const auto& [metric, label] : kLongMetrics) {
    (void)label;
    std::vector<report::Series> series;
    double hi = 0;
    for (const auto& [method, metrics] : curves.sum) {
      if (!metrics.count(metric)) continue;
      report::Series s;
      s.name = method;
      s.y = curves.mean(method, metric);
      for (size_t t = 0; t < s.y.size(); ++t) {
        s.x.push_back(static_cast<double>(t + 1));
        hi = std::max(hi, std::isfinite(s.y[t]) ? s.y[t] : 0.0);
      }
      series.push_back(std::move(s));
    }
    if (series.empty()) continue;
    const std::string path = run_dir + "/long_" + metric + ".png";
    report::write_png_grid(
        path, report::line_chart(series, 0, std::max(hi, 1e-9) * 1.05, 480, 280).unsqueeze(0), 1);
    out.push_back(path);
  }
  return out;
}

// The metric names and their axis labels, for the report.
std::vector<std::pair<std::string, std::string>> long_horizon_metrics() { return kLongMetrics; }

}  // namespace ebm::experiments::traj
