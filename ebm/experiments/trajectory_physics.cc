#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ebm/experiments/trajectory_internal.h"
#include "plugin/common/plugin_util.h"

namespace ebm::experiments {

LimitViolations joint_limit_violations(const mjModel* m, const torch::Tensor& qpos) {
  if (qpos.dim() != 2 || qpos.size(1) != m->nq) {
    throw std::invalid_argument("joint_limit_violations: qpos must be [T, " +
                                std::to_string(m->nq) + "], got " + c10::str(qpos.sizes()));
  }
  auto q = qpos.to(torch::kFloat64).contiguous();
  const double* v = q.data_ptr<double>();
  int64_t checks = 0, violations = 0;
  double excess = 0;
  for (int64_t t = 0; t < q.size(0); ++t) {
    for (int j = 0; j < m->njnt; ++j) {
      if (!m->jnt_limited[j] || (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE))
        continue;
      const double x = v[t * m->nq + m->jnt_qposadr[j]], lo = m->jnt_range[2 * j],
                   hi = m->jnt_range[2 * j + 1];
      ++checks;
      if (x < lo || x > hi) {
        ++violations;
        excess += x < lo ? lo - x : x - hi;
      }
    }
  }
  LimitViolations r;
  r.rate = checks ? static_cast<double>(violations) / static_cast<double>(checks) : 0.0;
  r.mean_excess = violations ? excess / static_cast<double>(violations) : 0.0;
  return r;
}

namespace traj {

std::vector<JointColumns> joint_columns(const mjModel* m, const TrajConfig& c,
                                        const trajectory::FrameLayout& layout) {
  std::map<int64_t, int64_t> pos_col_of, vel_col_of;  // qpos / dof address -> feature column
  int64_t col = 0;
  for (const auto& text : c.windows.features) {
    const auto f = trajectory::parse_feature(text, layout);
    for (int64_t e = f.begin; e < f.end; ++e, ++col) {
      if (f.field == "qpos") pos_col_of[e] = col;
      if (f.field == "qvel") vel_col_of[e] = col;
    }
  }
  std::vector<JointColumns> out;
  for (int j = 0; j < m->njnt; ++j) {
    if (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE) continue;
    const auto p = pos_col_of.find(m->jnt_qposadr[j]);
    if (p == pos_col_of.end()) continue;
    const auto v = vel_col_of.find(m->jnt_dofadr[j]);
    out.push_back({p->second, v == vel_col_of.end() ? -1 : v->second, j});
  }
  return out;
}

Physics make_physics(const TrajConfig& c, const trajectory::FrameLayout& layout) {
  Physics p;
  auto spec = rollout::load_scene(c.record.scene);
  p.model = rollout::compile(spec.get());
  p.data.reset(mj_makeData(p.model.get()));
  const mjModel* m = p.model.get();
  for (const auto& s : c.sites) {
    const int id = mj_name2id(m, mjOBJ_SITE, s.c_str());
    if (id < 0) throw std::runtime_error("eval.sites: the scene has no site '" + s + "'");
    p.sites.push_back(id);
  }
  if (!layout.offset("qpos") || layout.size("qpos") != static_cast<size_t>(m->nq)) {
    throw std::runtime_error("evaluation needs the recorded field qpos[" + std::to_string(m->nq) +
                             "]");
  }
  int64_t col = 0;
  for (const auto& text : c.windows.features) {
    const auto f = trajectory::parse_feature(text, layout);
    for (int64_t e = f.begin; e < f.end; ++e, ++col) {
      if (f.field == "qpos") p.qpos_cols.emplace_back(col, e);
      if (f.field == "ctrl") p.ctrl_cols.emplace_back(col, e);
    }
  }
  for (const auto& jc : joint_columns(m, c, layout)) {
    if (jc.vel_col >= 0) p.pos_vel_cols.emplace_back(jc.pos_col, jc.vel_col);
  }
  if (p.qpos_cols.empty())
    throw std::runtime_error("windows.features must include a qpos slice (positions to evaluate)");
  p.decimation = c.record.decimation;
  p.frame_dt = m->opt.timestep * c.record.decimation;
  return p;
}

namespace {

// One future's re-simulation (resimulate_all) on a given mjData of p's model.
torch::Tensor resimulate_on(const Physics& p, mjData* d, const SimState& start,
                            const torch::Tensor& feats) {
  const mjModel* m = p.model.get();
  mj_resetData(m, d);
  const auto copy = [](const torch::Tensor& from, mjtNum* to, int n) {
    const auto t = from.to(torch::kFloat64).contiguous();
    std::memcpy(to, t.data_ptr<double>(), sizeof(mjtNum) * n);
  };
  copy(start.qpos, d->qpos, m->nq);
  copy(start.qvel, d->qvel, m->nv);
  copy(start.ctrl, d->ctrl, m->nu);
  const auto f = feats.to(torch::kFloat64).contiguous();
  const double* fv = f.data_ptr<double>();
  const int64_t frames = f.size(0), dim = f.size(1);
  auto out = torch::empty({frames, m->nq}, torch::kFloat64);
  for (int64_t t = 0; t < frames; ++t) {
    if (t > 0) {
      for (const auto& [col, u] : p.ctrl_cols) d->ctrl[u] = fv[(t - 1) * dim + col];
    }
    for (int k = 0; k < p.decimation; ++k) mj_step(m, d);
    std::memcpy(out.data_ptr<double>() + t * m->nq, d->qpos, sizeof(mjtNum) * m->nq);
  }
  return out;
}

}  // namespace

std::vector<torch::Tensor> resimulate_all(const Physics& p, const SimState& start,
                                          const std::vector<torch::Tensor>& feats) {
  std::vector<torch::Tensor> out(feats.size());
  const size_t threads = std::min<size_t>(
      feats.size(), std::max(1u, std::min(2u, std::thread::hardware_concurrency())));
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(threads);
  for (size_t w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      try {
        rollout::DataPtr d(mj_makeData(p.model.get()));
        for (size_t j = w; j < feats.size(); j += threads)
          out[j] = resimulate_on(p, d.get(), start, feats[j]);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> site_feature_jacobian(Physics& p, int site,
                                                              const torch::Tensor& qpos,
                                                              int64_t dim) {
  const mjModel* m = p.model.get();
  mjData* d = p.data.get();
  const auto q = qpos.to(torch::kFloat64).contiguous();
  std::memcpy(d->qpos, q.data_ptr<double>(), sizeof(mjtNum) * m->nq);
  const auto jq = plugin::site_jacobian_qpos(m, d, site);  // also places the site
  auto jac = torch::zeros({3, dim}, torch::kFloat64);
  for (const auto& [col, idx] : p.qpos_cols) {
    for (int r = 0; r < 3; ++r) jac[r][col] = jq[r * m->nq + idx];
  }
  auto point = torch::empty({3}, torch::kFloat64);
  for (int r = 0; r < 3; ++r) point[r] = d->site_xpos[3 * site + r];
  return {jac, point};
}

torch::Tensor site_paths(Physics& p, const torch::Tensor& qpos) {
  const mjModel* m = p.model.get();
  mjData* d = p.data.get();
  const int64_t t_count = qpos.size(0);
  auto out = torch::empty({t_count, static_cast<int64_t>(p.sites.size()), 3}, torch::kFloat64);
  auto q = qpos.to(torch::kFloat64).contiguous();
  double* o = out.data_ptr<double>();
  for (int64_t t = 0; t < t_count; ++t) {
    std::memcpy(d->qpos, q.data_ptr<double>() + t * m->nq, sizeof(double) * m->nq);
    mj_kinematics(m, d);
    for (size_t s = 0; s < p.sites.size(); ++s) {
      for (int k = 0; k < 3; ++k) *o++ = d->site_xpos[3 * p.sites[s] + k];
    }
  }
  return out;
}

torch::Tensor to_qpos(const Physics& p, const torch::Tensor& pred, const torch::Tensor& base_qpos) {
  auto q = base_qpos.to(torch::kFloat64).unsqueeze(0).repeat({pred.size(0), 1});
  for (const auto& [col, idx] : p.qpos_cols) q.select(1, idx).copy_(pred.select(1, col));
  return q;
}

double frame_penetration(Physics& p, const double* qpos) {
  const mjModel* m = p.model.get();
  mjData* d = p.data.get();
  std::memcpy(d->qpos, qpos, sizeof(mjtNum) * m->nq);
  mj_fwdPosition(m, d);  // kinematics and collision
  double worst = 0;
  for (int i = 0; i < d->ncon; ++i)
    worst = std::max(worst, -static_cast<double>(d->contact[i].dist));
  return worst;
}

Feasibility feasibility(Physics& p, const torch::Tensor& qpos, const torch::Tensor& feats) {
  const mjModel* m = p.model.get();
  Feasibility r;
  double pen = 0;
  auto q = qpos.to(torch::kFloat64).contiguous();
  for (int64_t t = 0; t < q.size(0); ++t)
    pen += frame_penetration(p, q.data_ptr<double>() + t * m->nq);
  const auto limits = joint_limit_violations(m, q);
  r.limit_violation_rate = limits.rate;
  r.limit_excess = limits.mean_excess;
  r.penetration = pen / static_cast<double>(q.size(0));
  // Positions against velocities: (q[t+1] - q[t]) / dt vs (v[t] + v[t+1]) / 2 on hinge/slide dofs.
  double inc = 0;
  int64_t count = 0;
  for (const auto& [col, vcol] : p.pos_vel_cols) {
    auto pos = feats.select(1, col).to(torch::kFloat64),
         vel = feats.select(1, vcol).to(torch::kFloat64);
    const int64_t t = pos.size(0);
    if (t < 2) continue;
    auto fd = (pos.narrow(0, 1, t - 1) - pos.narrow(0, 0, t - 1)) / p.frame_dt;
    auto mid = (vel.narrow(0, 1, t - 1) + vel.narrow(0, 0, t - 1)) / 2;
    inc += (fd - mid).abs().sum().item<double>();
    count += t - 1;
  }
  if (count) {
    r.has_velocity = true;
    r.velocity_inconsistency = inc / count;
  }
  return r;
}

Feasibility mean_feasibility(const std::vector<Feasibility>& all) {
  Feasibility mean;
  for (const auto& f : all) {
    mean.limit_violation_rate += f.limit_violation_rate / all.size();
    mean.limit_excess += f.limit_excess / all.size();
    mean.penetration += f.penetration / all.size();
    mean.velocity_inconsistency += f.velocity_inconsistency / all.size();
    mean.has_velocity = f.has_velocity;
  }
  return mean;
}

}  // namespace traj
}  // namespace ebm::experiments
