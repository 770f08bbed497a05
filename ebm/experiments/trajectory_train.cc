#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/archive_file.h"
#include "ebm/core/trainer.h"
#include "ebm/experiments/trajectory_internal.h"
#include "ebm/report/metrics.h"
#include "ebm/report/progress.h"
#include "ebm/report/tensorboard.h"
#include "ebm/util/files.h"
#include "plugin/common/plugin_util.h"

namespace ebm::experiments {
namespace fs = std::filesystem;

trajectory::WindowStats generator_stats(const TrajectoryGenerator& g) {
  trajectory::WindowStats s;
  s.mean = g.mean();
  s.std = g.std_dev();
  s.delta_std = g.delta_std();
  return s;
}

namespace traj {

namespace {

template <typename M>
void save_module(const M& module, const std::string& path) {
  torch::serialize::OutputArchive a;
  module->save(a);
  write_archive_file(path, a);
}

template <typename M>
void load_module(M& module, const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": missing; train first (ebm traj train)");
  torch::serialize::InputArchive a;
  read_archive_file(path, a);
  module->load(a);
}

// The training windows, normalised, on the device, and the batches drawn from them.
struct TrainingData {
  trajectory::WindowStats stats;
  int64_t dim = 0;
  torch::Tensor history, future;  // [N, H, D] normalised; [N, latent frames, D] encoded
  torch::Tensor raw_windows;      // [N, H + F, D] raw features (the experts' statistics)
  int64_t size() const { return history.size(0); }
};

TrainingData training_data(const TrajConfig& c, const trajectory::TrajectoryCorpus& corpus,
                           torch::Device device) {
  const trajectory::WindowDataset train(corpus, c.windows, "train");
  TrainingData d;
  d.stats = train.compute_stats();
  d.dim = train.dim();
  d.history = trajectory::normalize_history(train.history(), d.stats).to(device);
  d.future = encode_future(trajectory::normalize_future(train.future(), train.history(), d.stats),
                           net_options(c, d.dim))
                 .to(device);
  d.raw_windows = torch::cat({train.history(), train.future()}, 1);
  fmt::print(
      stderr,
      "training on {} windows ({} history + {} future frames of {} features) from {} episodes\n",
      d.size(), c.windows.history, c.windows.future, d.dim, corpus.size());
  return d;
}

// Every training loop draws its batches the same way: batch_size random windows, from this
// process's shard (windows rank, rank + W, ...) when W processes train data-parallel.
torch::Tensor batch_index(const TrajConfig& c, const TrainingData& d,
                          const dist::DataParallel& dp) {
  const int64_t w = dp.world_size();
  const int64_t shard = (d.size() - dp.rank() + w - 1) / w;
  auto idx = torch::randint(shard, {std::min(c.batch_size, shard)}, torch::kLong);
  if (w > 1) idx = idx * w + dp.rank();
  return idx.to(d.history.device());
}

// Logs a step's values (means over the ranks) to metrics.jsonl on rank 0; every rank calls it.
// Returns the means.
std::vector<double> log_values(report::MetricsLog* log, dist::DataParallel& dp, int64_t step,
                               const std::vector<std::string>& names,
                               const std::vector<double>& values) {
  const auto means = dp.mean(values);
  if (!log) return means;
  std::vector<std::pair<std::string, double>> row;
  for (size_t i = 0; i < names.size(); ++i) row.emplace_back(names[i], means[i]);
  log->write(step, row);
  return means;
}

// The EBM: the core's trainer, sampler and replay buffer. On rank 0, `events` (TensorBoard) gets
// the logged steps' scalars and the histograms of its batch's energies.
void train_ebm(ContrastiveDivergenceTrainer& trainer, const TrajConfig& c, const TrainingData& d,
               report::MetricsLog* log, report::EventWriter* events, bool quiet,
               dist::DataParallel& dp) {
  report::Progress progress("ebm", c.ebm_iterations, quiet ? nullptr : stderr);
  const std::vector<std::string> names = {"ebm_loss", "ebm_e_pos", "ebm_e_neg", "ebm_energy_gap",
                                          "ebm_langevin_grad_norm"};
  for (int64_t it = 0; it < c.ebm_iterations; ++it) {
    const bool logged = (it + 1) % c.log_every == 0 || it + 1 == c.ebm_iterations;
    if (logged) trainer.diagnose_next_step();
    const auto idx = batch_index(c, d, dp);
    const auto r = trainer.step(d.future.index_select(0, idx), d.history.index_select(0, idx));
    if (logged) {
      const std::vector<double> values = {r.loss, r.e_pos, r.e_neg, r.e_pos - r.e_neg,
                                          r.langevin_grad_norm};
      const auto means = log_values(log, dp, r.step, names, values);
      if (events) {
        for (size_t i = 0; i < names.size(); ++i)
          events->add_scalar("train/" + names[i], means[i], r.step);
        events->add_histogram("energies/pos", r.energies_pos, r.step);
        events->add_histogram("energies/neg", r.energies_neg, r.step);
        events->flush();
      }
      if (!quiet)
        progress.update(it + 1,
                        fmt::format("loss={:.3f} E+={:.3f} E-={:.3f}", r.loss, r.e_pos, r.e_neg));
    }
  }
  progress.finish();
}

TrajectoryGeneratorMeta generator_meta(const TrajConfig& c, int64_t dim, const mjModel* model) {
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
  meta.model_hash = plugin::model_hash(model);
  return meta;
}

// Chain starts for sampling: the replay buffer's states (persistent chains); without a buffer
// (short-run training), fresh starts of its init distribution, for `init: data` real training
// futures of other windows (with the init noise). At most 1024.
torch::Tensor chain_starts(ContrastiveDivergenceTrainer& trainer, const TrainingData& d) {
  const int64_t n = d.size();
  torch::Tensor starts;
  if (trainer.buffer().size() > 0) {
    starts = trainer.buffer().states();
  } else {
    const auto rows = torch::randperm(n, torch::kLong).narrow(0, 0, std::min<int64_t>(n, 1024));
    starts = trainer.buffer().init_states(
        rows.size(0), d.future.index_select(0, rows.to(d.future.device())).cpu());
  }
  if (starts.size(0) > 1024)
    starts =
        starts.index_select(0, torch::randperm(starts.size(0), torch::kLong).narrow(0, 0, 1024));
  return starts;
}

// The hand-written experts: joint limits of the features that are positions of limited
// hinge/slide joints (and control ranges of controls), and the position-velocity pairs with their
// residuals' RMS on the training windows.
void add_experts(TrajectoryGenerator& gen, const TrajConfig& c, const mjModel* model,
                 const trajectory::FrameLayout& layout, const TrainingData& d) {
  auto lower = torch::full({d.dim}, -std::numeric_limits<float>::infinity());
  auto upper = torch::full({d.dim}, std::numeric_limits<float>::infinity());
  std::vector<int64_t> pos_cols, vel_cols;
  for (const auto& jc : joint_columns(model, c, layout)) {
    if (model->jnt_limited[jc.joint]) {
      lower[jc.pos_col] = model->jnt_range[2 * jc.joint];
      upper[jc.pos_col] = model->jnt_range[2 * jc.joint + 1];
    }
    if (jc.vel_col >= 0) {
      pos_cols.push_back(jc.pos_col);
      vel_cols.push_back(jc.vel_col);
    }
  }
  // Controls among the features: their actuators' control ranges (the recording never leaves
  // them, and a re-simulation clamps to them).
  int64_t col = 0;
  for (const auto& text : c.windows.features) {
    const auto f = trajectory::parse_feature(text, layout);
    for (int64_t e = f.begin; e < f.end; ++e, ++col) {
      if (f.field == "ctrl" && model->actuator_ctrllimited[e]) {
        lower[col] = model->actuator_ctrlrange[2 * e];
        upper[col] = model->actuator_ctrlrange[2 * e + 1];
      }
    }
  }
  gen.set_limits(lower, upper, c.limit_weight);
  gen.set_limit_projection(c.project_limits);
  if (pos_cols.empty()) return;
  const auto pc = torch::tensor(pos_cols, torch::kLong), vc = torch::tensor(vel_cols, torch::kLong);
  const auto& meta = gen.meta();
  const auto r = kinematic_residual(d.raw_windows.to(torch::kFloat64), pc, vc,
                                    static_cast<double>(meta.decimation) * meta.timestep);
  const auto rms = r.pow(2).flatten(0, 1).mean(0).sqrt().clamp_min(1e-3).to(torch::kFloat32);
  gen.set_kinematics(pc, vc, rms, c.kinematic_weight);
}

// The sampling package for evaluation and the ebm.generator plugin: models/generator.pt.
void write_generator(ContrastiveDivergenceTrainer& trainer,
                     std::shared_ptr<TrajectoryEnergyNetImpl> net, const TrajConfig& c,
                     const trajectory::FrameLayout& layout, const TrainingData& d,
                     const std::string& path) {
  auto spec = rollout::load_scene(c.record.scene);
  auto model = rollout::compile(spec.get());
  TrajectoryGenerator gen(generator_meta(c, d.dim, model.get()), std::move(net),
                          trainer.sampler().options(), d.stats.mean, d.stats.std, d.stats.delta_std,
                          chain_starts(trainer, d));
  add_experts(gen, c, model.get(), layout, d);
  gen.save(path);
}

// A baseline trained with Adam on its own loss over the same batches as the EBM's.
void train_baseline(
    const std::string& name, torch::nn::Module& module, int64_t iterations,
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& loss_fn,
    const TrajConfig& c, const TrainingData& d, report::MetricsLog* log, bool quiet,
    dist::DataParallel& dp) {
  module.to(d.history.device());
  if (dp.active()) {
    auto state = module.parameters();
    for (const auto& b : module.buffers()) state.push_back(b);
    dp.replicate(state);
  }
  torch::optim::Adam opt(module.parameters(), torch::optim::AdamOptions(c.baseline_lr));
  report::Progress progress(name, iterations, quiet ? nullptr : stderr);
  for (int64_t it = 0; it < iterations; ++it) {
    const auto idx = batch_index(c, d, dp);
    auto loss = loss_fn(d.history.index_select(0, idx), d.future.index_select(0, idx));
    opt.zero_grad();
    loss.backward();
    // Data-parallel: averaged gradients, and a step skipped everywhere when one is not finite.
    if (!dp.active() || dp.average_gradients(module.parameters())) opt.step();
    if ((it + 1) % c.log_every == 0 || it + 1 == iterations) {
      log_values(log, dp, it + 1, {name + "_loss"}, {loss.item<double>()});
      if (!quiet) progress.update(it + 1, fmt::format("loss={:.4f}", loss.item<double>()));
    }
  }
  progress.finish();
}

// The scene the models were trained on, as MJCF that compiles anywhere: what `python -m ebm.view`
// runs the generator in.
void write_scene(const TrajConfig& c, const std::string& path) {
  auto spec = rollout::load_scene(c.record.scene);
  rollout::compile(spec.get());
  util::write_file_atomic(path, rollout::portable_mjcf(spec.get()));
}

}  // namespace

void train_models(const TrajConfig& c, const std::string& run_dir, torch::Device device, bool quiet,
                  dist::DataParallel& dp) {
  const trajectory::TrajectoryCorpus corpus(run_dir + "/trajectories");
  const TrainingData d = training_data(c, corpus, device);
  std::unique_ptr<report::MetricsLog> log;
  std::unique_ptr<report::EventWriter> events;
  if (dp.is_main()) {
    fs::create_directories(run_dir + "/models");
    log = std::make_unique<report::MetricsLog>(run_dir + "/metrics.jsonl");
    events = std::make_unique<report::EventWriter>(run_dir + "/tensorboard");
  }
  quiet = quiet || !dp.is_main();
  torch::manual_seed(dist::rank_seed(c.seed, dp.rank()));

  auto net = std::make_shared<TrajectoryEnergyNetImpl>(net_options(c, d.dim));
  ContrastiveDivergenceTrainer trainer(net, {net_options(c, d.dim).latent_frames(), d.dim}, c.ebm,
                                       device);
  dp.attach(trainer);
  train_ebm(trainer, c, d, log.get(), events.get(), quiet, dp);
  if (dp.is_main()) {
    torch::serialize::OutputArchive a;
    trainer.save(a);
    write_archive_file(run_dir + "/models/ebm.pt", a);
    write_generator(trainer, net, c, corpus.layout(), d, run_dir + "/models/generator.pt");
    write_scene(c, run_dir + "/models/scene.xml");
  }

  FeedforwardPredictor fc(net_options(c, d.dim));
  train_baseline(
      "fc", *fc, c.fc_iterations,
      [&](const torch::Tensor& h, const torch::Tensor& f) { return fc->loss(h, f); }, c, d,
      log.get(), quiet, dp);
  if (dp.is_main()) save_module(fc, run_dir + "/models/fc.pt");
  MixtureDensityNet mdn(net_options(c, d.dim));
  train_baseline(
      "mdn", *mdn, c.mdn_iterations,
      [&](const torch::Tensor& h, const torch::Tensor& f) { return mdn->loss(h, f); }, c, d,
      log.get(), quiet, dp);
  if (dp.is_main()) save_module(mdn, run_dir + "/models/mdn.pt");
  dp.barrier();  // the models are on disk before any rank goes on
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

}  // namespace traj
}  // namespace ebm::experiments
