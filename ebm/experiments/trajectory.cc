#include "ebm/experiments/trajectory.h"

#include <fmt/core.h>
#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "datasets/trajectory/record_file.h"
#include "ebm/build_info.h"
#include "ebm/core/options_config.h"
#include "ebm/eval/trajectory_metrics.h"
#include "ebm/experiments/image_train.h"
#include "ebm/nets/trajectory_generator.h"
#include "ebm/report/metrics.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"
#include "ebm/report/progress.h"
#include "ebm/util/files.h"
#include "plugin/recorder/recorder.h"

namespace ebm::experiments {
namespace fs = std::filesystem;
using trajectory::TrajectoryCorpus;
using trajectory::WindowDataset;
using trajectory::WindowStats;

// ---------------------------------------------------------------------------------- config ---

rollout::RecordOptions record_options(const ConfigSection& root) {
  rollout::RecordOptions o;
  o.seed = static_cast<uint64_t>(root.get<int64_t>("seed", 0));
  const auto scene = root.section("scene");
  o.scene.name =
      scene.choice("name", "shadow_hand_block", {"shadow_hand_block", "particles", "mjcf"});
  if (!scene.is_null("path")) o.scene.path = scene.get<std::string>("path", "");
  const auto particles = scene.section("particles");
  o.scene.particles.count =
      static_cast<int>(particles.get<int64_t>("count", o.scene.particles.count));
  o.scene.particles.box = particles.get<double>("box", o.scene.particles.box);
  o.scene.particles.radius = particles.get<double>("radius", o.scene.particles.radius);
  o.scene.particles.max_force = particles.get<double>("max_force", o.scene.particles.max_force);
  const auto r = root.section("rollout");
  auto count = [&r](const char* key, int64_t fallback, int64_t min) {
    const int64_t v = r.get<int64_t>(key, fallback);
    r.check(v >= min && v <= 100000000, key, "an integer >= " + std::to_string(min));
    return v;
  };
  o.threads = static_cast<int>(count("threads", o.threads, 1));
  o.start_states = static_cast<int>(count("start_states", o.start_states, 1));
  o.branches = static_cast<int>(count("branches", o.branches, 1));
  o.warmup_steps = count("warmup_steps", o.warmup_steps, 0);
  o.episode_steps = count("episode_steps", o.episode_steps, 1);
  o.prefix_steps = count("prefix_steps", o.prefix_steps, 0);
  r.check(o.prefix_steps < o.episode_steps, "prefix_steps", "smaller than episode_steps");
  const auto p = root.section("policy");
  p.choice("kind", "ou", {"ou"});
  o.policy.theta = p.get<double>("theta", o.policy.theta);
  p.check(o.policy.theta >= 0, "theta", "a number >= 0");
  o.policy.sigma = p.get<double>("sigma", o.policy.sigma);
  p.check(o.policy.sigma >= 0, "sigma", "a number >= 0");
  o.policy.action_repeat =
      static_cast<int>(p.get<int64_t>("action_repeat", o.policy.action_repeat));
  p.check(o.policy.action_repeat >= 1, "action_repeat", "an integer >= 1");
  const auto rec = root.section("recorder");
  const auto fields = rec.get<std::vector<std::string>>("fields", {"qpos", "qvel", "ctrl"});
  rec.check(!fields.empty(), "fields", "a non-empty list");
  o.fields.clear();
  for (const auto& f : fields) o.fields += (o.fields.empty() ? "" : " ") + f;
  o.decimation = static_cast<int>(rec.get<int64_t>("decimation", o.decimation));
  rec.check(o.decimation >= 1, "decimation", "an integer >= 1");
  o.flush = rec.choice("flush", "episode", {"episode", "close", "none"});
  return o;
}

TrajConfig traj_config(const ConfigSection& root) {
  TrajConfig c;
  c.name = root.get<std::string>("name", "trajectories");
  c.seed = static_cast<uint64_t>(root.get<int64_t>("seed", 0));
  c.device = root.get<std::string>("device", "auto");
  c.record = record_options(root);
  const auto w = root.section("windows");
  c.windows.history = w.get<int64_t>("history", c.windows.history);
  w.check(c.windows.history >= 1, "history", "an integer >= 1");
  c.windows.future = w.get<int64_t>("future", c.windows.future);
  w.check(c.windows.future >= 1, "future", "an integer >= 1");
  c.windows.stride = w.get<int64_t>("stride", c.windows.stride);
  w.check(c.windows.stride >= 1, "stride", "an integer >= 1");
  c.windows.features = w.get<std::vector<std::string>>("features", c.windows.features);
  w.check(!c.windows.features.empty(), "features", "a non-empty list");
  c.windows.val_fraction = w.get<double>("val_fraction", c.windows.val_fraction);
  w.check(c.windows.val_fraction > 0 && c.windows.val_fraction < 1, "val_fraction", "in (0, 1)");
  const auto m = root.section("model");
  c.channels = m.get<int64_t>("channels", c.channels);
  m.check(c.channels >= 1, "channels", "an integer >= 1");
  c.layers = m.get<int64_t>("layers", c.layers);
  m.check(c.layers >= 1 && c.layers <= 10, "layers", "an integer in 1..10");
  c.prior_weight = m.get<double>("prior_weight", c.prior_weight);
  m.check(c.prior_weight >= 0, "prior_weight", ">= 0");
  c.components = m.get<int64_t>("components", c.components);
  m.check(c.components >= 1, "components", "an integer >= 1");
  c.limit_weight = m.get<double>("limit_weight", c.limit_weight);
  m.check(c.limit_weight >= 0, "limit_weight", ">= 0");
  c.kinematic_weight = m.get<double>("kinematic_weight", c.kinematic_weight);
  m.check(c.kinematic_weight >= 0, "kinematic_weight", ">= 0");
  c.basis = m.get<int64_t>("basis", c.basis);
  m.check(c.basis >= 0 && c.basis <= c.windows.future, "basis", "an integer in 0..windows.future");
  const auto t = root.section("trainer");
  c.ebm = trainer_options(t, root.section("langevin"), root.section("replay_buffer"));
  c.ebm_iterations = t.get<int64_t>("iterations", c.ebm_iterations);
  t.check(c.ebm_iterations >= 1, "iterations", "an integer >= 1");
  c.batch_size = t.get<int64_t>("batch_size", c.batch_size);
  t.check(c.batch_size >= 1, "batch_size", "an integer >= 1");
  c.log_every = t.get<int64_t>("log_every", c.log_every);
  t.check(c.log_every >= 1, "log_every", "an integer >= 1");
  const auto b = root.section("baselines");
  c.fc_iterations = b.get<int64_t>("fc_iterations", c.fc_iterations);
  b.check(c.fc_iterations >= 1, "fc_iterations", "an integer >= 1");
  c.mdn_iterations = b.get<int64_t>("mdn_iterations", c.mdn_iterations);
  b.check(c.mdn_iterations >= 1, "mdn_iterations", "an integer >= 1");
  c.baseline_lr = b.get<double>("lr", c.baseline_lr);
  b.check(c.baseline_lr > 0, "lr", "> 0");
  const auto e = root.section("eval");
  c.sites = e.require<std::vector<std::string>>("sites");
  e.check(!c.sites.empty(), "sites", "a non-empty list of site names");
  c.samples = e.get<int64_t>("samples", c.samples);
  e.check(c.samples >= 2, "samples", "an integer >= 2");
  c.horizon = e.get<int64_t>("horizon", c.horizon);
  e.check(c.horizon >= 1, "horizon", "an integer >= 1");
  c.error_frames = e.get<std::vector<int64_t>>("error_frames", c.error_frames);
  for (int64_t f : c.error_frames)
    e.check(f >= 1 && f <= c.horizon, "error_frames", "frames in 1..horizon");
  c.eval_langevin_steps = e.get<int64_t>("langevin_steps", c.eval_langevin_steps);
  e.check(c.eval_langevin_steps >= 1, "langevin_steps", "an integer >= 1");
  c.max_eval_states = e.get<int64_t>("max_states", c.max_eval_states);
  e.check(c.max_eval_states >= 1, "max_states", "an integer >= 1");
  c.render = e.get<bool>("render", c.render);
  c.camera_azimuth = e.get<double>("camera_azimuth", c.camera_azimuth);
  c.camera_elevation = e.get<double>("camera_elevation", c.camera_elevation);
  return c;
}

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

// --------------------------------------------------------------------------------- helpers ---

trajectory::WindowStats generator_stats(const TrajectoryGenerator& g) {
  trajectory::WindowStats s;
  s.mean = g.mean();
  s.std = g.std_dev();
  s.delta_std = g.delta_std();
  return s;
}

namespace {

struct Models {
  WindowStats stats;
  int64_t dim = 0;
  std::unique_ptr<TrajectoryGenerator> generator;
  FeedforwardPredictor fc{nullptr};
  MixtureDensityNet mdn{nullptr};
};

TrajectoryNetOptions net_options(const TrajConfig& c, int64_t dim) {
  return TrajectoryNetOptions(dim, c.windows.history, c.windows.future)
      .channels(c.channels)
      .layers(c.layers)
      .prior_weight(c.prior_weight)
      .components(c.components)
      .basis(c.basis);
}

std::string features_text(const TrajConfig& c) {
  std::string s;
  for (const auto& f : c.windows.features) s += (s.empty() ? "" : " ") + f;
  return s;
}

// The hinge and slide joints whose position is a feature: its column, its velocity's column (-1
// when the velocity is not a feature) and the joint. Free and ball joints are left out (their
// qpos are not their velocities' integrals coordinate by coordinate).
struct JointColumns {
  int64_t pos_col = -1, vel_col = -1;
  int joint = -1;
};

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

// The window layout and normalisation live in models/generator.pt (written with the EBM); the
// baselines are only valid with the same ones, so the config must agree with it.
void check_layout(const TrajectoryGenerator& g, const TrajConfig& c, const std::string& path) {
  const auto& meta = g.meta();
  if (meta.features != features_text(c)) {
    throw std::runtime_error(path + ": models were trained on features '" + meta.features +
                             "', the config asks for '" + features_text(c) + "'");
  }
  if (meta.history != c.windows.history || meta.future != c.windows.future) {
    throw std::runtime_error(path + ": models use windows of " + std::to_string(meta.history) +
                             " + " + std::to_string(meta.future) + " frames, the config " +
                             std::to_string(c.windows.history) + " + " +
                             std::to_string(c.windows.future));
  }
  if (meta.basis != c.basis) {
    throw std::runtime_error(path + ": models use model.basis = " + std::to_string(meta.basis) +
                             ", the config " + std::to_string(c.basis));
  }
}

template <typename M>
void save_module(const M& module, const std::string& path) {
  torch::serialize::OutputArchive a;
  module->save(a);
  std::ostringstream bytes;
  a.save_to(bytes);
  util::write_file_atomic(path, bytes.str());
}

template <typename M>
void load_module(M& module, const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": missing; train first (ebm traj train)");
  torch::serialize::InputArchive a;
  a.load_from(path);
  module->load(a);
}

std::string fmt_num(double v) { return util::json_number(v); }

// ------------------------------------------------------------------------------- training ---

void train_models(const TrajConfig& c, const std::string& run_dir, torch::Device device,
                  bool quiet) {
  const TrajectoryCorpus corpus(run_dir + "/trajectories");
  const WindowDataset train(corpus, c.windows, "train");
  const WindowStats stats = train.compute_stats();
  const int64_t dim = train.dim();
  fs::create_directories(run_dir + "/models");
  const auto h = trajectory::normalize_history(train.history(), stats).to(device);
  const auto net_opts = net_options(c, dim);
  const auto f =
      encode_future(trajectory::normalize_future(train.future(), train.history(), stats), net_opts)
          .to(device);
  const int64_t n = h.size(0);
  fmt::print(
      stderr,
      "training on {} windows ({} history + {} future frames of {} features) from {} episodes\n", n,
      c.windows.history, c.windows.future, dim, corpus.size());
  report::MetricsLog log(run_dir + "/metrics.jsonl");
  torch::manual_seed(c.seed);
  auto batch_index = [&](int64_t) {
    return torch::randint(n, {std::min(c.batch_size, n)}, torch::kLong).to(device);
  };

  // The EBM: the core's trainer, sampler and replay buffer.
  auto net = std::make_shared<TrajectoryEnergyNetImpl>(net_options(c, dim));
  ContrastiveDivergenceTrainer trainer(net, {net_opts.latent_frames(), dim}, c.ebm, device);
  {
    report::Progress progress("ebm", c.ebm_iterations);
    for (int64_t it = 0; it < c.ebm_iterations; ++it) {
      const auto idx = batch_index(it);
      const auto r = trainer.step(f.index_select(0, idx), h.index_select(0, idx));
      if ((it + 1) % c.log_every == 0 || it + 1 == c.ebm_iterations) {
        log.write(r.step, {{"ebm_loss", r.loss}, {"ebm_e_pos", r.e_pos}, {"ebm_e_neg", r.e_neg}});
        if (!quiet)
          progress.update(it + 1,
                          fmt::format("loss={:.3f} E+={:.3f} E-={:.3f}", r.loss, r.e_pos, r.e_neg));
      }
    }
    progress.finish();
  }
  {
    torch::serialize::OutputArchive a;
    trainer.save(a);
    std::ostringstream bytes;
    a.save_to(bytes);
    util::write_file_atomic(run_dir + "/models/ebm.pt", bytes.str());
  }
  {  // The sampling package for evaluation and the ebm.generator plugin.
    auto spec = rollout::load_scene(c.record.scene);
    auto model = rollout::compile(spec.get());
    TrajectoryGeneratorMeta meta;
    meta.features = features_text(c);
    meta.history = c.windows.history;
    meta.future = c.windows.future;
    meta.dim = dim;
    meta.basis = c.basis;
    meta.channels = c.channels;
    meta.layers = c.layers;
    meta.prior_weight = c.prior_weight;
    meta.decimation = c.record.decimation;
    meta.timestep = model->opt.timestep;
    meta.nq = model->nq;
    meta.nv = model->nv;
    meta.model_hash = recorder::model_hash(model.get());
    // Chain starts for sampling: the replay buffer's states (persistent chains); without a buffer
    // (short-run training), fresh starts of its init distribution, for `init: data` real
    // training futures of other windows (with the init noise).
    torch::Tensor starts;
    if (trainer.buffer().size() > 0) {
      starts = trainer.buffer().states();
    } else {
      const auto rows = torch::randperm(n, torch::kLong).narrow(0, 0, std::min<int64_t>(n, 1024));
      starts =
          trainer.buffer().init_states(rows.size(0), f.index_select(0, rows.to(f.device())).cpu());
    }
    if (starts.size(0) > 1024)
      starts =
          starts.index_select(0, torch::randperm(starts.size(0), torch::kLong).narrow(0, 0, 1024));
    TrajectoryGenerator gen(meta, net, trainer.sampler().options(), stats.mean, stats.std,
                            stats.delta_std, starts);
    // Joint limits of the features that are positions of limited hinge/slide joints, and the
    // position-velocity pairs with their residuals' RMS on the training windows.
    auto lower = torch::full({dim}, -std::numeric_limits<float>::infinity());
    auto upper = torch::full({dim}, std::numeric_limits<float>::infinity());
    std::vector<int64_t> pos_cols, vel_cols;
    for (const auto& jc : joint_columns(model.get(), c, corpus.layout())) {
      if (model->jnt_limited[jc.joint]) {
        lower[jc.pos_col] = model->jnt_range[2 * jc.joint];
        upper[jc.pos_col] = model->jnt_range[2 * jc.joint + 1];
      }
      if (jc.vel_col >= 0) {
        pos_cols.push_back(jc.pos_col);
        vel_cols.push_back(jc.vel_col);
      }
    }
    gen.set_limits(lower, upper, c.limit_weight);
    if (!pos_cols.empty()) {
      const auto pc = torch::tensor(pos_cols, torch::kLong),
                 vc = torch::tensor(vel_cols, torch::kLong);
      const auto r =
          kinematic_residual(torch::cat({train.history(), train.future()}, 1).to(torch::kFloat64),
                             pc, vc, static_cast<double>(meta.decimation) * meta.timestep);
      const auto rms = r.pow(2).flatten(0, 1).mean(0).sqrt().clamp_min(1e-3).to(torch::kFloat32);
      gen.set_kinematics(pc, vc, rms, c.kinematic_weight);
    }
    gen.save(run_dir + "/models/generator.pt");
  }
  // Baselines.
  auto train_baseline =
      [&](const std::string& name, torch::nn::Module& module, int64_t iterations,
          const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& loss_fn) {
        module.to(device);
        torch::optim::Adam opt(module.parameters(), torch::optim::AdamOptions(c.baseline_lr));
        report::Progress progress(name, iterations);
        for (int64_t it = 0; it < iterations; ++it) {
          const auto idx = batch_index(it);
          auto loss = loss_fn(h.index_select(0, idx), f.index_select(0, idx));
          opt.zero_grad();
          loss.backward();
          opt.step();
          if ((it + 1) % c.log_every == 0 || it + 1 == iterations) {
            log.write(it + 1, {{name + "_loss", loss.item<double>()}});
            if (!quiet) progress.update(it + 1, fmt::format("loss={:.4f}", loss.item<double>()));
          }
        }
        progress.finish();
      };
  FeedforwardPredictor fc(net_options(c, dim));
  train_baseline("fc", *fc, c.fc_iterations, [&](const torch::Tensor& hh, const torch::Tensor& ff) {
    return fc->loss(hh, ff);
  });
  save_module(fc, run_dir + "/models/fc.pt");
  MixtureDensityNet mdn(net_options(c, dim));
  train_baseline(
      "mdn", *mdn, c.mdn_iterations,
      [&](const torch::Tensor& hh, const torch::Tensor& ff) { return mdn->loss(hh, ff); });
  save_module(mdn, run_dir + "/models/mdn.pt");
}

Models load_models(const TrajConfig& c, const std::string& run_dir, torch::Device device) {
  Models m;
  const std::string path = run_dir + "/models/generator.pt";
  if (!fs::exists(path)) throw std::runtime_error(path + ": missing; train first (ebm traj train)");
  m.generator = TrajectoryGenerator::load(path, device);
  check_layout(*m.generator, c, path);
  m.dim = m.generator->meta().dim;
  m.stats = generator_stats(*m.generator);
  m.fc = FeedforwardPredictor(net_options(c, m.dim));
  load_module(m.fc, run_dir + "/models/fc.pt");
  m.fc->to(device);
  m.mdn = MixtureDensityNet(net_options(c, m.dim));
  load_module(m.mdn, run_dir + "/models/mdn.pt");
  m.mdn->to(device);
  return m;
}

// ------------------------------------------------------------------------------ prediction ---

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

// --------------------------------------------------------------------------- MuJoCo checks ---

struct Physics {
  rollout::ModelPtr model;
  rollout::DataPtr data;
  std::vector<int> sites;
  // Feature columns -> qpos / qvel addresses.
  std::vector<std::pair<int64_t, int64_t>> qpos_cols;  // (feature column, qpos index)
  std::vector<std::pair<int64_t, int64_t>>
      pos_vel_cols;  // (position, velocity) feature columns of a joint
  double frame_dt = 0;
};

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
    }
  }
  for (const auto& jc : joint_columns(m, c, layout)) {
    if (jc.vel_col >= 0) p.pos_vel_cols.emplace_back(jc.pos_col, jc.vel_col);
  }
  if (p.qpos_cols.empty())
    throw std::runtime_error("windows.features must include a qpos slice (positions to evaluate)");
  p.frame_dt = m->opt.timestep * c.record.decimation;
  return p;
}

// Site positions [T, P, 3] for qpos frames [T, nq].
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

// Full qpos frames for predicted features: the last history frame's qpos with the predicted
// coordinates written in.
torch::Tensor to_qpos(const Physics& p, const torch::Tensor& pred, const torch::Tensor& base_qpos) {
  auto q = base_qpos.to(torch::kFloat64).unsqueeze(0).repeat({pred.size(0), 1});
  for (const auto& [col, idx] : p.qpos_cols) q.select(1, idx).copy_(pred.select(1, col));
  return q;
}

struct Feasibility {
  double limit_violation_rate = 0, limit_excess = 0, penetration = 0, velocity_inconsistency = 0;
  bool has_velocity = false;
};

Feasibility feasibility(Physics& p, const torch::Tensor& qpos, const torch::Tensor& feats) {
  const mjModel* m = p.model.get();
  mjData* d = p.data.get();
  Feasibility r;
  double pen = 0;
  auto q = qpos.to(torch::kFloat64).contiguous();
  for (int64_t t = 0; t < q.size(0); ++t) {
    std::memcpy(d->qpos, q.data_ptr<double>() + t * m->nq, sizeof(double) * m->nq);
    mj_fwdPosition(m, d);  // kinematics and collision
    double worst = 0;
    for (int i = 0; i < d->ncon; ++i)
      worst = std::max(worst, -static_cast<double>(d->contact[i].dist));
    pen += worst;
  }
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

// --------------------------------------------------------------------------------- pictures ---

// One panel per method: every trajectory of the set in its own colour, all points (sites).
void write_paths_png(const std::string& path,
                     const std::vector<std::pair<std::string, torch::Tensor>>& sets) {
  double lo_x = 1e300, lo_y = 1e300, hi_x = -1e300, hi_y = -1e300;
  for (const auto& [name, s] : sets) {
    lo_x = std::min(lo_x, s.select(-1, 0).min().item<double>());
    hi_x = std::max(hi_x, s.select(-1, 0).max().item<double>());
    lo_y = std::min(lo_y, s.select(-1, 1).min().item<double>());
    hi_y = std::max(hi_y, s.select(-1, 1).max().item<double>());
  }
  const int64_t size = 256;
  const double span = std::max({hi_x - lo_x, hi_y - lo_y, 1e-6}) * 1.1;
  const double cx = 0.5 * (lo_x + hi_x) - span / 2, cy = 0.5 * (lo_y + hi_y) - span / 2;
  const double scale = (size - 1) / span;
  std::vector<torch::Tensor> panels;
  for (const auto& [name, s] : sets) {  // s: [K, T, P, 3]
    auto img = torch::ones({3, size, size});
    for (int64_t k = 0; k < s.size(0); ++k) {
      for (int64_t pt = 0; pt < s.size(2); ++pt) {
        auto xy = s[k].select(1, pt).narrow(1, 0, 2).to(torch::kFloat64).clone();
        xy.select(1, 0).sub_(cx).mul_(scale);
        xy.select(1, 1).sub_(cy).mul_(scale);
        report::draw_polyline(img, xy, report::palette(k));
      }
    }
    panels.push_back(img);
  }
  report::write_png_grid(path, torch::stack(panels), static_cast<int64_t>(panels.size()));
}

}  // namespace

// ------------------------------------------------------------------------------ rendering ---

// Rows of qpos frames rendered by scripts/render_frames.py (MuJoCo's Python renderer, OSMesa)
// into `png`. Returns false (after a warning) when rendering is not possible here.
bool render_frames(const TrajConfig& c, Physics& p, const std::string& dir, const std::string& png,
                   const std::vector<std::pair<std::string, torch::Tensor>>& rows,
                   const std::vector<std::string>& columns, const torch::Tensor& lookat,
                   double distance) {
  fs::create_directories(dir);
  mj_saveModel(p.model.get(), (dir + "/model.mjb").c_str(), nullptr, 0);
  if (!fs::exists(dir + "/model.mjb")) {
    fmt::print(stderr, "warning: cannot save {}/model.mjb; no rendered frames\n", dir);
    return false;
  }
  std::ostringstream j;
  j << "{\"lookat\": [" << fmt_num(lookat[0].item<double>()) << ", "
    << fmt_num(lookat[1].item<double>()) << ", " << fmt_num(lookat[2].item<double>())
    << "], \"distance\": " << fmt_num(distance) << ", \"azimuth\": " << fmt_num(c.camera_azimuth)
    << ", \"elevation\": " << fmt_num(c.camera_elevation) << ", \"columns\": [";
  for (size_t i = 0; i < columns.size(); ++i) j << (i ? ", " : "") << util::json_quote(columns[i]);
  j << "], \"rows\": [";
  for (size_t r = 0; r < rows.size(); ++r) {
    j << (r ? ", " : "") << "{\"name\": " << util::json_quote(rows[r].first) << ", \"qpos\": [";
    const auto q = rows[r].second.to(torch::kFloat64).contiguous();
    for (int64_t t = 0; t < q.size(0); ++t) {
      j << (t ? ", " : "") << "[";
      for (int64_t k = 0; k < q.size(1); ++k)
        j << (k ? ", " : "") << fmt_num(q[t][k].item<double>());
      j << "]";
    }
    j << "]}";
  }
  j << "]}\n";
  util::write_file_atomic(dir + "/frames.json", j.str());
  const std::string cmd = "'" + std::string(build::kPython) + "' '" + build::kSourceDir +
                          "/scripts/render_frames.py' '" + dir + "' '" + png + "' > /dev/null";
  if (std::system(cmd.c_str()) != 0) {
    fmt::print(stderr,
               "warning: rendering frames failed (MuJoCo's Python renderer with OSMesa; "
               "see the message above); the report has no rendered frames\n");
    return false;
  }
  return true;
}

// ------------------------------------------------------------------------------ evaluation ---

namespace {

struct EvalResult {
  std::map<std::string, std::map<std::string, double>> metrics;
  std::vector<std::string> pictures;
  int64_t states = 0;
};

EvalResult evaluate(const TrajConfig& c, const std::string& run_dir, torch::Device device,
                    bool quiet) {
  const TrajectoryCorpus corpus(run_dir + "/trajectories");
  Models models = load_models(c, run_dir, device);
  Physics phys = make_physics(c, corpus.layout());
  const auto& L = corpus.layout();
  const size_t fs = L.frame_size(), qoff = *L.offset("qpos");
  const int64_t nq = phys.model->nq;
  const int64_t prefix = (c.record.prefix_steps + c.record.decimation - 1) / c.record.decimation;
  if (prefix < c.windows.history) {
    throw std::runtime_error("evaluation needs branches that share at least windows.history = " +
                             std::to_string(c.windows.history) +
                             " frames: set rollout.prefix_steps >= " +
                             std::to_string(c.windows.history * c.record.decimation));
  }
  // Validation start states with their branches.
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
  std::vector<std::pair<uint32_t, std::vector<size_t>>> states;
  for (auto& [s, eps] : by_state) {
    if (eps.size() >= 2 && static_cast<int64_t>(states.size()) < c.max_eval_states)
      states.emplace_back(s, eps);
  }
  if (states.empty()) {
    throw std::runtime_error("no validation start state has 2 or more branches of " +
                             std::to_string(prefix + c.horizon) +
                             " frames; record more start states or branches");
  }
  // Features of an episode's frames [a, b) -> [b - a, D]; qpos -> [b - a, nq].
  std::vector<trajectory::FeatureSlice> feats;
  for (const auto& t : c.windows.features) feats.push_back(trajectory::parse_feature(t, L));
  auto features_of = [&](const trajectory::Episode& e, int64_t a, int64_t b) {
    return trajectory::episode_features(e, L, feats, a, b);
  };
  auto qpos_of = [&](const trajectory::Episode& e, int64_t a, int64_t b) {
    auto out = torch::empty({b - a, nq}, torch::kFloat64);
    double* o = out.data_ptr<double>();
    for (int64_t t = a; t < b; ++t) {
      for (int64_t k = 0; k < nq; ++k) *o++ = e.data(static_cast<int>(t * fs + qoff + k));
    }
    return out;
  };

  std::vector<std::string> methods = {"ebm", "fc", "mdn", "ground_truth"};
  if ((c.limit_weight > 0 && models.generator->has_limits()) ||
      (c.kinematic_weight > 0 && models.generator->has_kinematics())) {
    methods.push_back("ebm_experts");
  }
  std::map<std::string, std::map<std::string, double>> sum;
  EvalResult res;
  torch::manual_seed(c.seed + 1);
  report::Progress progress("eval", static_cast<int64_t>(states.size()));
  for (size_t si = 0; si < states.size(); ++si) {
    const auto& [state, eps] = states[si];
    std::vector<trajectory::Episode> branches;
    for (size_t i : eps) branches.push_back(corpus.read(i));
    const auto history = features_of(branches[0], prefix - c.windows.history, prefix).unsqueeze(0);
    const auto base_qpos = qpos_of(branches[0], prefix - 1, prefix)[0];
    const auto start_sites = site_paths(phys, base_qpos.unsqueeze(0))[0];
    std::vector<torch::Tensor> truth_paths, truth_feats, truth_qpos;
    for (const auto& b : branches) {
      truth_qpos.push_back(qpos_of(b, prefix, prefix + c.horizon));
      truth_paths.push_back(site_paths(phys, truth_qpos.back()));
      truth_feats.push_back(features_of(b, prefix, prefix + c.horizon));
    }
    const auto truth = torch::stack(truth_paths);  // [B, T, P, 3]
    const auto recorded = truth[0];
    std::map<std::string, torch::Tensor> sets;
    std::map<std::string, torch::Tensor> predict_cache;  // raw features [k, T, D] per method
    for (const auto& method : methods) {
      torch::Tensor paths;
      std::vector<Feasibility> fz;
      if (method == "ground_truth") {
        paths = truth;
        for (size_t b = 0; b < branches.size(); ++b)
          fz.push_back(feasibility(phys, truth_qpos[b], truth_feats[b]));
      } else {
        const int64_t k = method == "fc" ? 1 : c.samples;
        // Every method draws from the same seed at each state: ebm and ebm_experts get the same
        // chain starts and noise (only the energy differs), and no method's numbers depend on
        // how many random numbers another one drew (the MDN's did, on the EBM's Langevin steps).
        torch::manual_seed(c.seed + 2 + si);
        const auto pred = predict(method, models, c, history, k, device)[0];  // [k, T, D]
        if (!torch::isfinite(pred).all().item<bool>()) {
          throw std::runtime_error(
              "method " + method + " produced non-finite futures from held-out state " +
              std::to_string(state) +
              (method == "ebm_experts"
                   ? " (lower model.limit_weight, model.kinematic_weight or langevin.step_size)"
                   : ""));
        }
        predict_cache[method] = pred;
        std::vector<torch::Tensor> ps;
        for (int64_t j = 0; j < k; ++j) {
          const auto q = to_qpos(phys, pred[j], base_qpos);
          ps.push_back(site_paths(phys, q));
          fz.push_back(feasibility(phys, q, pred[j]));
        }
        paths = torch::stack(ps);
        // The FC net is deterministic: its K samples are K copies of one prediction.
        if (method == "fc") paths = paths.expand({c.samples, -1, -1, -1}).contiguous();
      }
      sets[method] = paths;
      auto& m = sum[method];
      for (int64_t t : c.error_frames) {
        double e = 0;
        for (int64_t j = 0; j < paths.size(0); ++j) e += eval::error_at(paths[j], recorded, t);
        m["error_at_" + std::to_string(t)] += e / paths.size(0);
      }
      m["min_ade"] += eval::min_ade(paths, recorded);
      m["min_fde"] += eval::min_fde(paths, recorded);
      m["nearest_branch_ade"] += eval::nearest_branch_ade(paths, truth);
      m["diversity"] += eval::diversity(paths);
      m["energy_distance"] += eval::energy_distance(paths, truth);
      m["movement"] += eval::movement(paths, start_sites);
      Feasibility mean;
      for (const auto& f : fz) {
        mean.limit_violation_rate += f.limit_violation_rate / fz.size();
        mean.limit_excess += f.limit_excess / fz.size();
        mean.penetration += f.penetration / fz.size();
        mean.velocity_inconsistency += f.velocity_inconsistency / fz.size();
        mean.has_velocity = f.has_velocity;
      }
      m["joint_limit_violation_rate"] += mean.limit_violation_rate;
      m["joint_limit_excess"] += mean.limit_excess;
      m["penetration"] += mean.penetration;
      if (mean.has_velocity) m["velocity_inconsistency"] += mean.velocity_inconsistency;
    }
    if (si == 0) {
      const std::string png = run_dir + "/paths.png";
      // The EBM as the main job samples it: composed with the experts when configured.
      const std::string ebm_method = sets.count("ebm_experts") ? "ebm_experts" : "ebm";
      write_paths_png(png, {{"ground_truth", sets["ground_truth"]},
                            {"fc", sets["fc"].narrow(0, 0, 1)},
                            {ebm_method, sets[ebm_method]},
                            {"mdn", sets["mdn"]}});
      res.pictures.push_back(png);
      if (c.render) {
        // Frames T = 0 (the last history frame) and every quarter of the horizon.
        std::vector<int64_t> ts = {0};
        for (int64_t q = 1; q <= 4; ++q) ts.push_back(std::max<int64_t>(1, c.horizon * q / 4));
        std::vector<std::string> columns;
        for (int64_t t : ts) columns.push_back("T=" + std::to_string(t));
        auto pick = [&](const torch::Tensor& qpos) {  // qpos [horizon, nq] -> [5, nq]
          std::vector<torch::Tensor> f;
          for (int64_t t : ts) f.push_back(t == 0 ? base_qpos : qpos[t - 1]);
          return torch::stack(f);
        };
        // The EBM as the main job samples it: composed with the experts when configured.
        const bool composed = predict_cache.count("ebm_experts") > 0;
        const auto ebm_pred = predict_cache.at(composed ? "ebm_experts" : "ebm");
        const auto fc_pred = predict_cache.at("fc");
        const std::string ebm_name = composed ? "EBM + experts" : "EBM";
        std::vector<std::pair<std::string, torch::Tensor>> rows = {
            {"ground truth", pick(truth_qpos[0])},
            {"FC", pick(to_qpos(phys, fc_pred[0], base_qpos))},
            {ebm_name + ", sample 1", pick(to_qpos(phys, ebm_pred[0], base_qpos))},
            {ebm_name + ", sample 2", pick(to_qpos(phys, ebm_pred[1], base_qpos))}};
        const auto lookat = start_sites.mean(0);
        const double spread = (truth - lookat.view({1, 1, 1, 3})).norm(2, -1).max().item<double>();
        const std::string frames_png = run_dir + "/frames.png";
        if (render_frames(c, phys, run_dir + "/render", frames_png, rows, columns, lookat,
                          std::max(0.2, 1.5 * spread))) {
          res.pictures.push_back(frames_png);
        }
      }
    }
    if (!quiet) progress.update(static_cast<int64_t>(si + 1));
  }
  progress.finish();
  for (auto& [method, m] : sum) {
    for (auto& [k, v] : m) res.metrics[method][k] = v / static_cast<double>(states.size());
  }
  res.states = static_cast<int64_t>(states.size());
  return res;
}

// Methods in table order: the truth, the EBM (and its composition with the experts), the
// baselines.
std::vector<std::string> method_order(
    const std::map<std::string, std::map<std::string, double>>& metrics) {
  std::vector<std::string> out;
  for (const char* m : {"ground_truth", "ebm", "ebm_experts", "mdn", "fc"}) {
    if (metrics.count(m)) out.push_back(m);
  }
  return out;
}

std::string metrics_table(const std::map<std::string, std::map<std::string, double>>& metrics) {
  const std::vector<std::string> methods = method_order(metrics);
  std::vector<std::string> keys;
  for (const auto& [k, v] : metrics.at("ebm")) keys.push_back(k);
  std::ostringstream out;
  out << fmt::format("{:<28}", "metric");
  for (const auto& m : methods) out << fmt::format("{:>14}", m);
  out << "\n";
  for (const auto& k : keys) {
    out << fmt::format("{:<28}", k);
    for (const auto& m : methods) {
      auto it = metrics.at(m).find(k);
      out << (it == metrics.at(m).end() ? fmt::format("{:>14}", "-")
                                        : fmt::format("{:>14.4f}", it->second));
    }
    out << "\n";
  }
  return out.str();
}

std::string metrics_json(const EvalResult& r, const TrajConfig& c) {
  std::ostringstream out;
  out << "{\n  \"states\": " << r.states << ",\n  \"samples\": " << c.samples
      << ",\n  \"horizon\": " << c.horizon
      << ",\n  \"units\": \"metres (tracked sites)\",\n  \"methods\": {";
  bool first_method = true;
  for (const auto& [method, m] : r.metrics) {
    out << (first_method ? "" : ",") << "\n    " << util::json_quote(method) << ": {";
    first_method = false;
    bool first = true;
    for (const auto& [k, v] : m) {
      out << (first ? "" : ", ") << util::json_quote(k) << ": " << fmt_num(v);
      first = false;
    }
    out << "}";
  }
  out << "\n  }\n}\n";
  return out.str();
}

std::string report_html(const EvalResult& r, const TrajConfig& c, const std::string& table) {
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>" << c.name
    << "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px "
       "8px;text-align:right}"
       "th:first-child,td:first-child{text-align:left}</style></head><body>\n"
    << "<h1>" << c.name << ": futures from one state</h1>\n<p>Scene <b>" << c.record.scene.name
    << "</b>; " << r.states << " held-out start states, K = " << c.samples
    << " samples per method, horizon " << c.horizon << " frames ("
    << c.horizon * c.record.decimation
    << " physics steps); distances in metres between tracked sites (";
  for (size_t i = 0; i < c.sites.size(); ++i) h << (i ? ", " : "") << c.sites[i];
  h << "). <code>ground_truth</code> are the recorded branches from the same state; "
       "<code>fc</code> is "
       "the feedforward MSE baseline (one prediction), <code>mdn</code> a mixture density network, "
       "<code>ebm</code> the energy model sampled with Langevin dynamics, <code>ebm_experts</code> "
       "(when "
       "model.limit_weight or model.kinematic_weight &gt; 0) the same chains under the product of "
       "the "
       "energy model and the hand-written experts (joint limits, position-velocity "
       "consistency).</p>\n"
       "<table><tr><th>metric</th>";
  const std::vector<std::string> methods = method_order(r.metrics);
  for (const auto& m : methods) h << "<th>" << m << "</th>";
  h << "</tr>\n";
  for (const auto& [k, v] : r.metrics.at("ebm")) {
    h << "<tr><td>" << k << "</td>";
    for (const auto& m : methods) {
      auto it = r.metrics.at(m).find(k);
      h << "<td>"
        << (it == r.metrics.at(m).end() ? std::string("-") : fmt::format("{:.4f}", it->second))
        << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</table>\n<h2>Top-down paths of the tracked sites from the first held-out state</h2>\n"
       "<p>Panels, left to right: true branches, FC prediction, EBM samples (composed with the "
       "experts "
       "when their weights are &gt; 0), MDN samples (one colour per trajectory).</p>\n";
  for (const auto& p : r.pictures) {
    const std::string name = fs::path(p).filename().string();
    if (name == "frames.png") {
      h << "<h2>Rendered frames</h2>\n<p>Rows: the recorded continuation, the FC prediction, two "
           "EBM "
           "samples (composed with the experts when their weights are &gt; 0); columns: "
           "frames after the history.</p>\n";
    }
    h << "<img src=\"" << name << "\" width=\"1040\">\n";
  }
  h << "<pre>" << table << "</pre>\n</body></html>\n";
  return h.str();
}

}  // namespace

TrajRunSummary run_trajectory(const TrajRunOptions& o) {  // NOLINT(readability-function-size)
  auto config = Config::load_file(o.config_path, o.overrides);
  const TrajConfig c = traj_config(config->root());
  config->check_all_used();
  TrajRunSummary s;
  s.run_dir = o.out_dir.empty() ? "runs/" + c.name : o.out_dir;
  fs::create_directories(s.run_dir);
  util::write_file_atomic(s.run_dir + "/config.yaml", config->dump());
  const torch::Device device = resolve_device(c.device);
  const std::string traj_dir = s.run_dir + "/trajectories";
  if (o.record) {
    bool have = false;
    std::error_code ec;
    if (fs::is_directory(traj_dir, ec)) {
      for (const auto& e : fs::directory_iterator(traj_dir, ec))
        have |= e.path().extension() == trajectory::kFileSuffix;
    }
    if (have) {
      fmt::print(stderr, "using the recording in {}\n", traj_dir);
    } else {
      auto ro = c.record;
      ro.out_dir = traj_dir;
      report::Progress progress("record", static_cast<int64_t>(ro.start_states) * ro.branches);
      const auto r = rollout::record_rollouts(ro, [&](int64_t done, int64_t) {
        if (!o.quiet) progress.update(done);
      });
      progress.finish(
          fmt::format("{} episodes, {:.0f} steps/s", r.episodes, r.physics_steps / r.seconds));
    }
  }
  if (o.train) train_models(c, s.run_dir, device, o.quiet);
  if (o.eval) {
    const auto r = evaluate(c, s.run_dir, device, o.quiet);
    s.metrics = r.metrics;
    s.table = metrics_table(r.metrics);
    s.metrics_json = s.run_dir + "/metrics.json";
    util::write_file_atomic(s.metrics_json, metrics_json(r, c));
    s.report_html = s.run_dir + "/report.html";
    util::write_file_atomic(s.report_html, report_html(r, c, s.table));
  }
  return s;
}

}  // namespace ebm::experiments
