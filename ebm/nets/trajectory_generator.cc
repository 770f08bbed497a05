#include "ebm/nets/trajectory_generator.h"

#include <torch/torch.h>

#include <limits>
#include <stdexcept>
#include <utility>

#include "ebm/core/archive_file.h"

namespace ebm {

TrajectoryGenerator::TrajectoryGenerator(TrajectoryGeneratorMeta meta,
                                         std::shared_ptr<TrajectoryEnergyNetImpl> net,
                                         LangevinOptions langevin, torch::Tensor mean,
                                         torch::Tensor std, torch::Tensor delta_std,
                                         torch::Tensor chain_starts)
    : meta_(std::move(meta)),
      net_(std::move(net)),
      langevin_(langevin),
      mean_(std::move(mean)),
      std_(std::move(std)),
      delta_std_(std::move(delta_std)),
      starts_(std::move(chain_starts)) {
  device_ =
      net_->parameters().empty() ? torch::Device(torch::kCPU) : net_->parameters()[0].device();
}

namespace {

void put(torch::serialize::OutputArchive& a, const std::string& k, int64_t v) {
  a.write(k, c10::IValue(v));
}
void put(torch::serialize::OutputArchive& a, const std::string& k, double v) {
  a.write(k, c10::IValue(v));
}
void put(torch::serialize::OutputArchive& a, const std::string& k, const std::string& v) {
  a.write(k, c10::IValue(v));
}

c10::IValue get(torch::serialize::InputArchive& a, const std::string& k, const std::string& path) {
  c10::IValue v;
  if (!a.try_read(k, v))
    throw std::runtime_error(path + ": not a trajectory generator file (no '" + k + "')");
  return v;
}

}  // namespace

void TrajectoryGenerator::set_limits(torch::Tensor lower, torch::Tensor upper, double weight) {
  if (lower.numel() != meta_.dim || upper.numel() != meta_.dim || weight < 0) {
    throw std::invalid_argument("TrajectoryGenerator::set_limits: need dim values and weight >= 0");
  }
  lower_ = lower.reshape({meta_.dim}).to(torch::kFloat32);
  upper_ = upper.reshape({meta_.dim}).to(torch::kFloat32);
  limit_expert_ = std::make_shared<StateLimitEnergyImpl>(window_options(), mean_, std_, delta_std_,
                                                         lower_.to(device_), upper_.to(device_));
  limit_weight_ = weight;
}

void TrajectoryGenerator::set_kinematics(torch::Tensor pos_cols, torch::Tensor vel_cols,
                                         torch::Tensor scale, double weight) {
  if (weight < 0)
    throw std::invalid_argument("TrajectoryGenerator::set_kinematics: weight must be >= 0");
  // Validates the column pairs, scales and dt (throws std::invalid_argument).
  kinematic_expert_ = std::make_shared<KinematicEnergyImpl>(
      window_options(), mean_, std_, delta_std_, pos_cols.to(device_), vel_cols.to(device_),
      scale.to(device_), static_cast<double>(meta_.decimation) * meta_.timestep);
  pos_cols_ = pos_cols.flatten().to(torch::kLong);
  vel_cols_ = vel_cols.flatten().to(torch::kLong);
  kin_scale_ = scale.flatten().to(torch::kFloat32);
  kinematic_weight_ = weight;
}

void TrajectoryGenerator::set_goal(torch::Tensor jacobian, torch::Tensor state, torch::Tensor point,
                                   torch::Tensor target, double weight) {
  if (!(weight >= 0)) throw std::invalid_argument("TrajectoryGenerator::set_goal: weight < 0");
  goal_expert_ = std::make_shared<GoalEnergyImpl>(window_options(), mean_, std_, delta_std_,
                                                  jacobian.to(device_), state.to(device_),
                                                  point.to(device_), target.to(device_));
  goal_weight_ = weight;
}

std::shared_ptr<EnergyModel> TrajectoryGenerator::sampling_energy() const {
  const bool limits = limit_expert_ && limit_weight_ > 0;
  const bool kinematics = kinematic_expert_ && kinematic_weight_ > 0;
  const bool goal = goal_expert_ && goal_weight_ > 0;
  if (!limits && !kinematics && !goal) return net_;
  auto sum = std::make_shared<WeightedSumEnergy>();
  sum->add(net_, 1.0);
  if (limits) sum->add(limit_expert_, limit_weight_);
  if (kinematics) sum->add(kinematic_expert_, kinematic_weight_);
  if (goal) sum->add(goal_expert_, goal_weight_);
  return sum;
}

void TrajectoryGenerator::save(const std::string& path) const {
  torch::serialize::OutputArchive a;
  put(a, "meta.format", std::string("ebm.trajectory_generator.v1"));
  put(a, "meta.features", meta_.features);
  put(a, "meta.history", meta_.history);
  put(a, "meta.future", meta_.future);
  put(a, "meta.dim", meta_.dim);
  put(a, "meta.basis", meta_.basis);
  put(a, "meta.channels", meta_.channels);
  put(a, "meta.layers", meta_.layers);
  put(a, "meta.prior_weight", meta_.prior_weight);
  put(a, "meta.decimation", meta_.decimation);
  put(a, "meta.timestep", meta_.timestep);
  put(a, "meta.nq", meta_.nq);
  put(a, "meta.nv", meta_.nv);
  put(a, "meta.model_hash", std::to_string(meta_.model_hash));
  langevin_.save(a, "langevin.");
  a.write("stats.mean", mean_);
  a.write("stats.std", std_);
  a.write("stats.delta_std", delta_std_);
  a.write("chain_starts", starts_.to(torch::kCPU));
  if (lower_.defined()) {
    a.write("limits.lower", lower_.to(torch::kCPU));
    a.write("limits.upper", upper_.to(torch::kCPU));
    put(a, "limits.weight", limit_weight_);
    put(a, "limits.project", static_cast<int64_t>(project_limits_));
  }
  if (pos_cols_.defined()) {
    a.write("kinematics.pos_cols", pos_cols_);
    a.write("kinematics.vel_cols", vel_cols_);
    a.write("kinematics.scale", kin_scale_);
    put(a, "kinematics.weight", kinematic_weight_);
  }
  torch::serialize::OutputArchive model;
  net_->save(model);
  a.write("model", model);
  write_archive_file(path, a);
}

std::unique_ptr<TrajectoryGenerator> TrajectoryGenerator::load(const std::string& path,
                                                               torch::Device device) {
  torch::serialize::InputArchive a;
  read_archive_file(path, a, device);
  if (get(a, "meta.format", path).toStringRef() != "ebm.trajectory_generator.v1") {
    throw std::runtime_error(path + ": unknown generator format");
  }
  TrajectoryGeneratorMeta m;
  m.features = get(a, "meta.features", path).toStringRef();
  m.history = get(a, "meta.history", path).toInt();
  m.future = get(a, "meta.future", path).toInt();
  m.dim = get(a, "meta.dim", path).toInt();
  m.basis = get(a, "meta.basis", path).toInt();
  m.channels = get(a, "meta.channels", path).toInt();
  m.layers = get(a, "meta.layers", path).toInt();
  m.prior_weight = get(a, "meta.prior_weight", path).toDouble();
  m.decimation = get(a, "meta.decimation", path).toInt();
  m.timestep = get(a, "meta.timestep", path).toDouble();
  m.nq = get(a, "meta.nq", path).toInt();
  m.nv = get(a, "meta.nv", path).toInt();
  m.model_hash = std::stoull(get(a, "meta.model_hash", path).toStringRef());
  get(a, "langevin.steps", path);  // a generator file always holds the sampler's settings
  const LangevinOptions lo = LangevinOptions::load(a, "langevin.");
  torch::Tensor mean, std, delta, starts;
  a.read("stats.mean", mean);
  a.read("stats.std", std);
  a.read("stats.delta_std", delta);
  a.read("chain_starts", starts);
  auto net =
      std::make_shared<TrajectoryEnergyNetImpl>(TrajectoryNetOptions(m.dim, m.history, m.future)
                                                    .channels(m.channels)
                                                    .layers(m.layers)
                                                    .prior_weight(m.prior_weight)
                                                    .basis(m.basis));
  torch::serialize::InputArchive model;
  a.read("model", model);
  net->load(model);
  net->to(device);
  net->eval();
  auto g = std::make_unique<TrajectoryGenerator>(m, net, lo, mean.to(device), std.to(device),
                                                 delta.to(device), starts);
  torch::Tensor lower, upper;
  if (a.try_read("limits.lower", lower) && a.try_read("limits.upper", upper)) {
    g->set_limits(lower, upper, get(a, "limits.weight", path).toDouble());
    c10::IValue project;
    if (a.try_read("limits.project", project)) g->set_limit_projection(project.toInt() != 0);
  }
  torch::Tensor pos_cols, vel_cols, scale;
  if (a.try_read("kinematics.pos_cols", pos_cols) && a.try_read("kinematics.vel_cols", vel_cols) &&
      a.try_read("kinematics.scale", scale)) {
    try {
      g->set_kinematics(pos_cols.cpu(), vel_cols.cpu(), scale.cpu(),
                        get(a, "kinematics.weight", path).toDouble());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(path + ": bad kinematics (" + e.what() + ")");
    }
  }
  return g;
}

torch::Tensor TrajectoryGenerator::sample(const torch::Tensor& history, int64_t k, int64_t frames,
                                          int64_t steps, std::optional<at::Generator> gen) {
  if (history.dim() != 3 || history.size(1) != meta_.history || history.size(2) != meta_.dim) {
    throw std::invalid_argument("TrajectoryGenerator::sample: history must be [N, " +
                                std::to_string(meta_.history) + ", " + std::to_string(meta_.dim) +
                                "], got " + c10::str(history.sizes()));
  }
  const int64_t n = history.size(0), h = meta_.history, f = meta_.future;
  auto opts = langevin_;
  if (steps > 0) opts.steps(steps);
  const LangevinSampler sampler(opts);
  const auto net_opts = window_options();
  const auto energy = sampling_energy();
  const auto hist = history.to(device_, torch::kFloat32).repeat_interleave(k, 0);
  const bool project = project_limits_ && lower_.defined() && limit_weight_ > 0;
  // One float32 step inside the limits: a float32 bound may round to just outside the exact
  // (double) range, where a clamped joint would still count as a violation.
  const float inf = std::numeric_limits<float>::infinity();
  const auto lower = project ? torch::nextafter(lower_, torch::full_like(lower_, inf)).to(device_)
                             : torch::Tensor();
  const auto upper = project ? torch::nextafter(upper_, torch::full_like(upper_, -inf)).to(device_)
                             : torch::Tensor();
  const auto out = chain_windows(hist, frames, f, [&](const torch::Tensor& hraw) {
    // Chain starts: rows of the stored replay-buffer states (smooth, diverse futures the model
    // produced in training), drawn at random.
    const auto idx = torch::randint(starts_.size(0), {n * k}, gen, torch::kLong);
    const auto x0 = starts_.index_select(0, idx.to(starts_.device())).to(device_);
    const auto z = sampler.sample(*energy, x0, (hraw - mean_) / std_, {}, nullptr, gen);
    torch::NoGradGuard no_grad;
    const auto raw = decode_future(z, net_opts) * delta_std_ + hraw.select(1, h - 1).unsqueeze(1);
    if (!project) return raw;
    return torch::max(torch::min(raw, upper), lower);
  });
  return out.to(torch::kCPU).view({n, k, frames, meta_.dim});
}

}  // namespace ebm
