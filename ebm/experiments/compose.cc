// `ebm eval compose`: composition of energy models (a product of experts = a sum of energies).
//  1. dSprites: a "size" model trained on squares of every scale at one fixed position and a
//     "position" model trained on squares at a grid of positions at one fixed scale (its
//     condition given as a map: a Gaussian bump at the target position). Summing their
//     energies asks for a size AND a position; targets are the combinations neither saw in
//     training. A factor regressor (least squares on image moments, fitted on rendered sprites)
//     scores where each sampler puts the square and how big it is.
//  2. The 2-D demonstration: analytic energies A (a ring), B (a vertical band) and A + B, with the
//     sampler's chains drawn over heat maps of each energy.
#include <torch/torch.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "ebm/core/archive_file.h"
#include "ebm/core/options_config.h"
#include "ebm/core/trainer.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/nets/image_net_config.h"
#include "ebm/nets/image_nets.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"
#include "ebm/report/progress.h"
#include "ebm/util/files.h"

namespace ebm::experiments::detail {

namespace fs = std::filesystem;

namespace {

// A conditional model that reads its label from one column of a [N, K] condition, so that models
// with different labels can be summed by WeightedSumEnergy under one condition tensor.
class ColumnConditioned : public EnergyModel {
 public:
  ColumnConditioned(std::shared_ptr<EnergyModel> m, int64_t column)
      : m_(std::move(m)), col_(column) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& c) override {
    return m_->energy(x, c.select(1, col_));
  }

 private:
  std::shared_ptr<EnergyModel> m_;
  int64_t col_;
};

// The position expert's condition: a Gaussian bump (std in image fractions) at the centre that the
// dSprites rules give a sprite at (pos_x, pos_y), as a size x size map.
torch::Tensor position_map(double pos_x, double pos_y, int64_t size, double std_dev) {
  const double cx = (8.0 + 48.0 * pos_x) / 64.0, cy = (8.0 + 48.0 * pos_y) / 64.0;
  auto u = (torch::arange(size, torch::kFloat32) + 0.5) / size;
  auto dx = (u - cx).pow(2).view({1, size}), dy = (u - cy).pow(2).view({size, 1});
  return torch::exp(-(dx + dy) / (2 * std_dev * std_dev));
}

// An unconditional image net that sees its condition as an extra input channel: the map of the
// label ([classes, 1, H, W] maps, one per label).
class MapConditioned : public EnergyModel {
 public:
  MapConditioned(std::shared_ptr<ImageEnergyNet> net, torch::Tensor maps)
      : net_(register_module("net", std::move(net))), maps_(std::move(maps)) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& label) override {
    if (!label.defined()) throw std::invalid_argument("the position expert needs a position label");
    auto m =
        maps_.to(x.device(), x.scalar_type()).index_select(0, label.to(x.device(), torch::kLong));
    return net_->energy(torch::cat({x, m}, 1));
  }

 private:
  std::shared_ptr<ImageEnergyNet> net_;
  torch::Tensor maps_;
};

// An expert made blind to position by construction: the net sees the image translated so that
// its centre of mass (of intensity) sits in the middle (bilinear resampling, differentiable).
class Recentred : public EnergyModel {
 public:
  explicit Recentred(std::shared_ptr<ImageEnergyNet> net)
      : net_(register_module("net", std::move(net))) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor& label) override {
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    auto m = x.sum(1);  // [N, H, W]
    auto mass = m.sum({1, 2}) + 1e-6;
    auto us = (torch::arange(w, x.options()) + 0.5) / w,
         vs = (torch::arange(h, x.options()) + 0.5) / h;
    auto cx = (m * us.view({1, 1, w})).sum({1, 2}) / mass,
         cy = (m * vs.view({1, h, 1})).sum({1, 2}) / mass;
    auto one = torch::ones_like(cx), zero = torch::zeros_like(cx);
    auto theta = torch::stack(
        {torch::stack({one, zero, 2 * cx - 1}, 1), torch::stack({zero, one, 2 * cy - 1}, 1)}, 1);
    auto grid = torch::nn::functional::affine_grid(theta, {n, x.size(1), h, w}, false);
    auto centred = torch::nn::functional::grid_sample(
        x, grid,
        torch::nn::functional::GridSampleFuncOptions().align_corners(false).padding_mode(
            torch::kZeros));
    return net_->energy(centred, label);
  }

 private:
  std::shared_ptr<ImageEnergyNet> net_;
};

// Squares rendered at 64x64 by the dSprites rules, area-averaged down to size x size.
torch::Tensor render_squares(const std::vector<std::array<double, 3>>& factors, int64_t size) {
  auto out = torch::empty({static_cast<int64_t>(factors.size()), 1, 64, 64}, torch::kUInt8);
  for (size_t i = 0; i < factors.size(); ++i)
    data::render_sprite(0, factors[i][0], 0.0, factors[i][1], factors[i][2],
                        out[static_cast<int64_t>(i)][0].data_ptr<uint8_t>());
  auto f = data::to_float(out);
  return size == 64 ? f : torch::adaptive_avg_pool2d(f, {size, size});
}

// Factor regressor: scale from sqrt(mass), position from the centroid, each a least-squares line
// fitted on rendered sprites with known factors.
struct FactorRegressor {
  Eigen::Vector2d scale_fit, x_fit, y_fit;

  static Eigen::MatrixXd moments(const torch::Tensor& images) {  // [N, 3]: sqrt(mass), cx, cy
    auto x = images.select(1, 0).to(torch::kFloat64).clamp(0, 1);
    const int64_t h = x.size(1), w = x.size(2);
    auto mass = x.sum({1, 2}) + 1e-9;
    auto xs = (torch::arange(w, torch::kFloat64) + 0.5) / w,
         ys = (torch::arange(h, torch::kFloat64) + 0.5) / h;
    auto cx = (x * xs.view({1, 1, w})).sum({1, 2}) / mass,
         cy = (x * ys.view({1, h, 1})).sum({1, 2}) / mass;
    auto m = torch::stack({(mass / (h * w)).sqrt(), cx, cy}, 1).contiguous();
    Eigen::MatrixXd out(m.size(0), 3);
    for (int64_t i = 0; i < m.size(0); ++i)
      for (int j = 0; j < 3; ++j) out(i, j) = m[i][j].item<double>();
    return out;
  }
  static Eigen::Vector2d fit(const Eigen::VectorXd& feature, const Eigen::VectorXd& target) {
    Eigen::MatrixXd a(feature.size(), 2);
    a.col(0).setOnes();
    a.col(1) = feature;
    return a.colPivHouseholderQr().solve(target);
  }
  void train(int64_t size, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<std::array<double, 3>> f;
    for (int i = 0; i < 2000; ++i) f.push_back({0.5 + 0.5 * u(rng), u(rng), u(rng)});
    auto m = moments(render_squares(f, size));
    Eigen::VectorXd s(f.size()), px(f.size()), py(f.size());
    for (size_t i = 0; i < f.size(); ++i) s(i) = f[i][0], px(i) = f[i][1], py(i) = f[i][2];
    scale_fit = fit(m.col(0), s);
    x_fit = fit(m.col(1), px);
    y_fit = fit(m.col(2), py);
  }
  // [N, 3]: scale, pos_x, pos_y.
  Eigen::MatrixXd predict(const torch::Tensor& images) const {
    auto m = moments(images);
    Eigen::MatrixXd out(m.rows(), 3);
    out.col(0) = (scale_fit(0) + scale_fit(1) * m.col(0).array()).matrix();
    out.col(1) = (x_fit(0) + x_fit(1) * m.col(1).array()).matrix();
    out.col(2) = (y_fit(0) + y_fit(1) * m.col(2).array()).matrix();
    return out;
  }
};

struct FactorScores {
  double position = 0, scale = 0, joint = 0;
};

FactorScores score(const FactorRegressor& reg, const torch::Tensor& images,
                   const std::vector<std::array<double, 3>>& targets, double pos_tol,
                   double scale_tol) {
  auto p = reg.predict(images);
  FactorScores s;
  for (int64_t i = 0; i < p.rows(); ++i) {
    const auto& t = targets[static_cast<size_t>(i)];
    const bool sc = std::abs(p(i, 0) - t[0]) <= scale_tol;
    const bool po = std::abs(p(i, 1) - t[1]) <= pos_tol && std::abs(p(i, 2) - t[2]) <= pos_tol;
    s.scale += sc, s.position += po, s.joint += sc && po;
  }
  const double n = static_cast<double>(p.rows());
  s.scale /= n, s.position /= n, s.joint /= n;
  return s;
}

// The keys of sections `compose`, `trainer`, `model` and `demo`.
struct ComposeSpec {
  int64_t size = 32, train_images = 4000, samples = 4, eval_steps = 100;
  std::vector<double> scales, positions, weights;
  double fixed_pos = 0.5, fixed_scale = 0.5, pos_tol = 0.1, scale_tol = 0.1, bump_std = 0.08;
  int64_t iterations = 1000, batch = 64, demo_steps = 100;
  TrainerOptions topts;
  ImageEnergyOptions net_base;
};

// Reads and checks the sections `compose`, `trainer`, `langevin`, `replay_buffer`, `model`, `demo`.
ComposeSpec read_compose_spec(const ConfigSection& root) {
  ComposeSpec spec;
  auto s = root.section("compose");
  spec.size = s.get<int64_t>("image_size", 32);
  s.check(spec.size >= 16 && spec.size <= 64, "image_size", "in [16, 64]");
  spec.train_images = s.get<int64_t>("train_images", 4000);
  s.check(spec.train_images >= 100, "train_images", ">= 100");
  spec.scales = s.get<std::vector<double>>("scales", {0.5, 0.75, 1.0});
  s.check(spec.scales.size() >= 2, "scales", "at least 2 values in [0.5, 1]");
  for (double v : spec.scales) s.check(v >= 0.5 && v <= 1, "scales", "values in [0.5, 1]");
  spec.positions = s.get<std::vector<double>>("positions", {0.2, 0.5, 0.8});
  s.check(spec.positions.size() >= 2, "positions", "at least 2 values in [0, 1]");
  for (double p : spec.positions) s.check(p >= 0 && p <= 1, "positions", "values in [0, 1]");
  spec.fixed_pos = s.get<double>("fixed_position", 0.5);
  s.check(spec.fixed_pos >= 0 && spec.fixed_pos <= 1, "fixed_position", "in [0, 1]");
  spec.fixed_scale = s.get<double>("fixed_scale", 0.5);
  s.check(spec.fixed_scale >= 0.5 && spec.fixed_scale <= 1, "fixed_scale", "in [0.5, 1]");
  spec.samples = s.get<int64_t>("samples_per_target", 4);
  s.check(spec.samples >= 1, "samples_per_target", ">= 1");
  spec.eval_steps = s.get<int64_t>("eval_steps", 100);
  s.check(spec.eval_steps >= 1, "eval_steps", ">= 1");
  spec.pos_tol = s.get<double>("position_tolerance", 0.1);
  spec.scale_tol = s.get<double>("scale_tolerance", 0.1);
  spec.bump_std = s.get<double>("bump_std", 0.08);
  s.check(spec.bump_std > 0, "bump_std", "> 0");
  spec.weights = s.get<std::vector<double>>("weights", {1.0, 1.0});
  s.check(spec.weights.size() == 2 && spec.weights[0] > 0 && spec.weights[1] > 0, "weights",
          "two positive weights (size model, position model)");
  s.check(spec.pos_tol > 0, "position_tolerance", "> 0");
  s.check(spec.scale_tol > 0, "scale_tolerance", "> 0");
  auto trainer = root.section("trainer");
  spec.iterations = trainer.get<int64_t>("iterations", 1000);
  trainer.check(spec.iterations >= 1, "iterations", ">= 1");
  spec.batch = trainer.get<int64_t>("batch_size", 64);
  trainer.check(spec.batch >= 2, "batch_size", ">= 2");
  spec.topts = trainer_options(trainer, root.section("langevin"), root.section("replay_buffer"));
  spec.net_base = image_net_options(root.section("model"), 1);
  spec.demo_steps = root.section("demo").get<int64_t>("steps", 100);
  root.section("demo").check(spec.demo_steps >= 1, "steps", ">= 1");
  return spec;
}

// The experts' training sets: the factors (scale, pos_x, pos_y) of the squares and their labels.
struct ExpertData {
  std::vector<std::array<double, 3>> factors;
  std::vector<int64_t> labels;
};
struct TrainingSets {
  ExpertData size_set, position_set;
};

// Draws both training sets from one stream seeded with `seed`.
TrainingSets make_training_sets(const ComposeSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick_scale(0, spec.scales.size() - 1),
      pick_pos(0, spec.positions.size() - 1);
  // Training sets: size model = every scale at the fixed position; position model = every grid
  // cell at the fixed scale.
  TrainingSets sets;
  for (int64_t i = 0; i < spec.train_images; ++i) {
    const size_t si = pick_scale(rng);
    sets.size_set.factors.push_back({spec.scales[si], spec.fixed_pos, spec.fixed_pos});
    sets.size_set.labels.push_back(static_cast<int64_t>(si));
    const size_t px = pick_pos(rng), py = pick_pos(rng);
    sets.position_set.factors.push_back({spec.fixed_scale, spec.positions[px], spec.positions[py]});
    sets.position_set.labels.push_back(static_cast<int64_t>(py * spec.positions.size() + px));
  }
  return sets;
}

// The config text that trained experts are cached under (the config less its eval keys).
// Trained experts are kept in <run dir>/models/<name>.pt with the config text they were trained
// under; a later run with the same training settings (only eval keys changed) reuses them.
std::string training_key(const Config& config) {
  auto copy = YAML::Clone(YAML::Load(config.dump()));
  for (const char* k :
       {"samples_per_target", "eval_steps", "position_tolerance", "scale_tolerance", "weights"})
    copy["compose"].remove(k);
  copy.remove("demo");
  copy.remove("name");
  YAML::Emitter emitter;
  emitter << copy;
  return std::string(emitter.c_str());
}

// Loads `model` from `cache` when that file was trained under `key`; true when it did.
bool load_cached_expert(Context& c, const std::string& cache, const std::string& key,
                        EnergyModel& model) {
  torch::serialize::InputArchive in;
  read_archive_file(cache, in, c.device);
  c10::IValue stored_key;
  in.read("training_config", stored_key);
  if (stored_key.toStringRef() != key) return false;
  model.load(in);
  model.to(c.device);
  model.eval();
  c.log("compose: reusing " + cache + " (same training settings)");
  return true;
}

// Trains one expert with the core's trainer on rendered squares and their labels.
void train_expert(Context& c, const ComposeSpec& spec, const std::string& key,
                  const std::string& name, const std::shared_ptr<EnergyModel>& model,
                  const ExpertData& data) {
  auto images = render_squares(data.factors, spec.size);
  c.figure("train_" + name + ".png", images.narrow(0, 0, 16), 16,
           "Training images of the " + name + " model.");
  const std::string cache = c.run_dir + "/models/" + name + ".pt";
  if (fs::exists(cache) && load_cached_expert(c, cache, key, *model)) return;
  auto y = torch::tensor(data.labels, torch::kLong);
  ContrastiveDivergenceTrainer trainer(model, {1, spec.size, spec.size}, spec.topts, c.device);
  report::Progress progress("train " + name, spec.iterations, c.quiet ? nullptr : stderr);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + data.labels.size() + name.size());
  TrainStepResult result;
  for (int64_t it = 0; it < spec.iterations; ++it) {
    auto idx = torch::randint(images.size(0), {spec.batch}, gen, torch::kLong);
    result =
        trainer.step(images.index_select(0, idx).to(c.device), y.index_select(0, idx).to(c.device));
    char fields[96];
    std::snprintf(fields, sizeof(fields), "loss=%.4f E+=%.4f E-=%.4f", result.loss, result.e_pos,
                  result.e_neg);
    progress.update(it + 1, fields);
  }
  progress.finish("");
  model->eval();
  torch::serialize::OutputArchive out;
  model->save(out);
  out.write("training_config", c10::IValue(key));
  write_archive_file(cache, out);
}

// The position expert's condition maps, one per grid cell (cell k = row k / P, column k % P).
torch::Tensor position_maps(const ComposeSpec& spec) {
  const int64_t cells = static_cast<int64_t>(spec.positions.size() * spec.positions.size());
  auto maps = torch::empty({cells, 1, spec.size, spec.size});
  for (int64_t k = 0; k < cells; ++k) {
    const double px = spec.positions[static_cast<size_t>(k) % spec.positions.size()];
    const double py = spec.positions[static_cast<size_t>(k) / spec.positions.size()];
    maps[k][0].copy_(position_map(px, py, spec.size, spec.bump_std));
  }
  return maps;
}

// The two trained experts.
struct Experts {
  std::shared_ptr<Recentred> size_expert;
  std::shared_ptr<MapConditioned> position_expert;
};

// Builds and trains (or reloads) the size expert, then the position expert.
Experts train_experts(Context& c, const ComposeSpec& spec, const TrainingSets& sets,
                      const std::string& key) {
  // The size expert: the class-conditional net (label = scale class) on the recentred image, so
  // that it judges size only and leaves position to the other expert. (Convolutions with zero
  // padding and global sum pooling alone still see the borders: trained at one position only, a
  // plain net penalises every other position, and the sum then fights the position expert.)
  auto size_net = std::make_shared<Recentred>(std::make_shared<ImageEnergyNet>(
      ImageEnergyOptions(spec.net_base).num_classes(static_cast<int64_t>(spec.scales.size()))));
  train_expert(c, spec, key, "size", size_net, sets.size_set);
  // The position expert: the same net, unconditional, over [image, condition map].
  auto maps = position_maps(spec);
  auto pos_net = std::make_shared<ImageEnergyNet>(
      ImageEnergyOptions(spec.net_base).in_channels(2).num_classes(0));
  auto pos_model = std::make_shared<MapConditioned>(pos_net, maps);
  train_expert(c, spec, key, "position", pos_model, sets.position_set);
  return {size_net, pos_model};
}

// Fits the factor regressor; records its own accuracy on fresh renders of the targets' grid.
FactorRegressor fit_regressor(Context& c, const ComposeSpec& spec) {
  FactorRegressor regressor;
  regressor.train(spec.size, c.seed + 5);
  std::vector<std::array<double, 3>> check;
  for (double scale : spec.scales)
    for (double px : spec.positions)
      for (double py : spec.positions) check.push_back({scale, px, py});
  const auto scores =
      score(regressor, render_squares(check, spec.size), check, spec.pos_tol, spec.scale_tol);
  c.metrics.set("regressor_accuracy_on_renders", scores.joint);
  return regressor;
}

// The sampling targets with each expert's label; each combination `samples` times in a row.
struct Targets {
  std::vector<std::array<double, 3>> factors;
  std::vector<int64_t> scale_labels, position_labels;
};

// Targets: combinations neither model saw (scale != fixed_scale and position != fixed).
Targets make_targets(const ComposeSpec& spec) {
  Targets targets;
  const auto& positions = spec.positions;
  for (size_t si = 0; si < spec.scales.size(); ++si) {
    if (std::abs(spec.scales[si] - spec.fixed_scale) < 1e-9) continue;
    for (size_t py = 0; py < positions.size(); ++py)
      for (size_t px = 0; px < positions.size(); ++px) {
        if (std::abs(positions[px] - spec.fixed_pos) < 1e-9 &&
            std::abs(positions[py] - spec.fixed_pos) < 1e-9)
          continue;
        for (int64_t k = 0; k < spec.samples; ++k) {
          targets.factors.push_back({spec.scales[si], positions[px], positions[py]});
          targets.scale_labels.push_back(static_cast<int64_t>(si));
          targets.position_labels.push_back(static_cast<int64_t>(py * positions.size() + px));
        }
      }
  }
  return targets;
}

// Sampling's results: report rows, summary table, figure rows (ideal first), per-sampler metrics.
struct SamplingResults {
  std::vector<std::vector<std::string>> rows;
  std::string table = "model            position  scale   joint\n";
  std::vector<torch::Tensor> grid;
  util::Json per = util::Json::object();
};

// Samples the targets with each expert alone and with their sum, and scores the samples.
SamplingResults sample_targets(Context& c, const ComposeSpec& spec, const Experts& experts,
                               const FactorRegressor& regressor, const Targets& targets) {
  const auto count = static_cast<int64_t>(targets.factors.size());
  auto cond = torch::stack({torch::tensor(targets.scale_labels, torch::kLong),
                            torch::tensor(targets.position_labels, torch::kLong)},
                           1)
                  .to(c.device);
  auto a = std::make_shared<ColumnConditioned>(experts.size_expert, 0);
  auto b = std::make_shared<ColumnConditioned>(experts.position_expert, 1);
  WeightedSumEnergy sum;
  sum.add(a, spec.weights[0]).add(b, spec.weights[1]);
  const LangevinSampler sampler(LangevinOptions(spec.topts.langevin()).steps(spec.eval_steps));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 77);
  auto x0 = torch::rand({count, 1, spec.size, spec.size}, gen).to(c.device);
  std::vector<std::pair<std::string, EnergyModel*>> samplers{
      {"size_model", a.get()}, {"position_model", b.get()}, {"sum", &sum}};
  SamplingResults results;
  for (const auto& [name, model] : samplers) {
    c.log("compose: sampling " + std::to_string(count) + " targets with the " + name);
    auto out = sampler.sample(*model, x0, cond, {}, nullptr, gen).cpu();
    const auto sc = score(regressor, out, targets.factors, spec.pos_tol, spec.scale_tol);
    results.per.set(name, util::Json::object()
                              .set("position_accuracy", sc.position)
                              .set("scale_accuracy", sc.scale)
                              .set("joint_accuracy", sc.joint));
    results.rows.push_back({name, fmt4(sc.position), fmt4(sc.scale), fmt4(sc.joint)});
    char line[128];
    std::snprintf(line, sizeof(line), "%-16s %8.4f %7.4f %7.4f\n", name.c_str(), sc.position,
                  sc.scale, sc.joint);
    results.table += line;
    // One sample per target for the first 16 targets of distinct combinations.
    results.grid.push_back(out.index_select(
        0, torch::arange(0, std::min<int64_t>(16, count / spec.samples), torch::kLong) *
               spec.samples));
  }
  std::vector<std::array<double, 3>> ideal;
  for (int64_t i = 0; i < results.grid.front().size(0); ++i)
    ideal.push_back(targets.factors[static_cast<size_t>(i * spec.samples)]);
  results.grid.insert(results.grid.begin(), render_squares(ideal, spec.size));
  return results;
}

// Records the composition's metrics and writes its paragraph, table and figure.
void report_composition(Context& c, const ComposeSpec& spec, const Targets& targets,
                        const SamplingResults& results) {
  c.metrics.set("targets", static_cast<int64_t>(targets.factors.size()))
      .set("unseen_combinations", static_cast<int64_t>(targets.factors.size()) / spec.samples)
      .set("tolerances",
           util::Json::object().set("position", spec.pos_tol).set("scale", spec.scale_tol))
      .set("factor_accuracy", results.per);
  c.page->paragraph("The size model saw squares of every scale at position (" +
                    fmt4(spec.fixed_pos) + ", " + fmt4(spec.fixed_pos) +
                    "); the position model saw squares of scale " + fmt4(spec.fixed_scale) +
                    " on a grid of positions. The targets are the " +
                    std::to_string(targets.factors.size() / spec.samples) +
                    " (scale, position) combinations neither saw; each sampler runs " +
                    std::to_string(spec.eval_steps) +
                    " Langevin steps from noise. A factor regressor "
                    "(least squares on sqrt(mass) and the centroid, fitted on rendered squares) "
                    "reads scale and position; a sample is correct within " +
                    fmt4(spec.pos_tol) + " in position and " + fmt4(spec.scale_tol) + " in scale.");
  c.page->table({"sampler", "position accuracy", "scale accuracy", "joint accuracy"}, results.rows);
  c.figure("compose.png", torch::cat(results.grid), results.grid.front().size(0),
           "Columns: targets. Rows: the target rendered by the dSprites rules, then a sample of "
           "the size model alone, the position model alone, and their sum.");
}

// ---- the 2-D demonstration ----

class RingEnergy : public EnergyModel {  // (|x| - 1)^2 / (2 * 0.1^2)
 public:
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return (x.norm(2, 1) - 1.0).pow(2) / 0.02;
  }
};
class BandEnergy : public EnergyModel {  // (x0 - 0.6)^2 / (2 * 0.1^2)
 public:
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return (x.select(1, 0) - 0.6).pow(2) / 0.02;
  }
};

// 2-D demonstration: metrics, compose_2d.png, report; returns each energy's fraction on both.
std::map<std::string, double> run_demo_2d(Context& c, int64_t demo_steps) {
  auto ring = std::make_shared<RingEnergy>();
  auto band = std::make_shared<BandEnergy>();
  WeightedSumEnergy both;
  both.add(ring).add(band);
  const LangevinSampler step2d(LangevinOptions()
                                   .steps(1)
                                   .step_size(0.002)
                                   .noise_std(0.02)
                                   .clip_mode(GradClip::kNone)
                                   .clamp_min(std::nullopt)
                                   .clamp_max(std::nullopt));
  const int64_t res = 160;
  auto grid_xy =
      torch::stack(
          torch::meshgrid({torch::linspace(-1.6, 1.6, res), torch::linspace(-1.6, 1.6, res)}, "xy"),
          -1)
          .reshape({res * res, 2});
  std::vector<torch::Tensor> panels;
  util::Json demo = util::Json::object();
  std::map<std::string, double> on_both_of;
  for (const auto& [name, model] : std::vector<std::pair<std::string, EnergyModel*>>{
           {"A_ring", ring.get()}, {"B_band", band.get()}, {"A_plus_B", &both}}) {
    torch::Tensor energies;
    {
      torch::NoGradGuard no_grad;
      energies = model->energy(grid_xy).reshape({res, res}).flip(0);  // row 0 = top (y = 1.6)
    }
    auto img = report::heat_map(-energies.clamp_max(energies.min().item<double>() + 50));
    auto g2 = at::make_generator<at::CPUGeneratorImpl>(c.seed + 3);
    auto x = torch::rand({16, 2}, g2) * 3.2 - 1.6;
    std::vector<torch::Tensor> path{x};
    for (int64_t k = 0; k < demo_steps; ++k) {
      x = step2d.sample(*model, x, {}, {}, nullptr, g2);
      path.push_back(x);
    }
    auto traj = torch::stack(path, 1);  // [16, T, 2]
    for (int64_t i = 0; i < traj.size(0); ++i) {
      auto pix = (traj[i] + 1.6) / 3.2 * (res - 1);
      report::draw_polyline(img, pix, {1.0f, 1.0f, 1.0f});
    }
    panels.push_back(img);
    auto fin = traj.select(1, -1);
    const double on_ring =
        (fin.norm(2, 1) - 1).abs().lt(0.2).to(torch::kFloat64).mean().item<double>();
    const double on_band =
        (fin.select(1, 0) - 0.6).abs().lt(0.2).to(torch::kFloat64).mean().item<double>();
    const double on_both =
        ((fin.norm(2, 1) - 1).abs().lt(0.2) & (fin.select(1, 0) - 0.6).abs().lt(0.2))
            .to(torch::kFloat64)
            .mean()
            .item<double>();
    on_both_of[name] = on_both;
    demo.set(name, util::Json::object()
                       .set("on_ring", on_ring)
                       .set("on_band", on_band)
                       .set("on_both", on_both));
  }
  c.metrics.set("demo_2d", demo);
  const std::string dpath = c.run_dir + "/compose_2d.png";
  report::write_png_grid(dpath, torch::stack(panels), 3);
  c.summary.figures.push_back(dpath);
  c.page->heading("2-D demonstration", 2)
      .paragraph(
          "Heat maps of energies A (a ring of radius 1), B (a band at x = 0.6) and A + B over "
          "[-1.6, 1.6]^2 (bright = low energy), with 16 Langevin chains of " +
          std::to_string(demo_steps) +
          " steps from uniform starts drawn in white. Under A + B the chains end where the ring "
          "crosses the band.")
      .image("compose_2d.png", 640);
  return on_both_of;
}

}  // namespace

void run_compose(Context& c) {
  const ComposeSpec spec = read_compose_spec(c.config->root());
  if (c.checked_only()) return;

  torch::manual_seed(c.seed);
  const TrainingSets sets = make_training_sets(spec, c.seed);
  const std::string key = training_key(*c.config);
  const Experts experts = train_experts(c, spec, sets, key);
  const FactorRegressor regressor = fit_regressor(c, spec);
  const Targets targets = make_targets(spec);
  const SamplingResults results = sample_targets(c, spec, experts, regressor, targets);
  report_composition(c, spec, targets, results);
  const auto on_both_of = run_demo_2d(c, spec.demo_steps);
  c.summary.table = results.table + "2-D demo, final chain states on ring and band: A " +
                    fmt4(on_both_of.at("A_ring")) + ", B " + fmt4(on_both_of.at("B_band")) +
                    ", A+B " + fmt4(on_both_of.at("A_plus_B")) + "\n";
}

}  // namespace ebm::experiments::detail
