#include "ebm/core/langevin.h"

#include <torch/autograd.h>
#include <torch/serialize/archive.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/langevin_graph.h"

namespace ebm {

void LangevinOptions::validate() const {
  constexpr const char* kSection = "langevin";
  require_option(steps() >= 0, kSection, "steps", ">= 0", steps());
  require_option(step_size() >= 0, kSection, "step_size", ">= 0", step_size());
  require_option(noise_std() >= 0, kSection, "noise_std", ">= 0", noise_std());
  require_option(clip_mode() == GradClip::kNone || grad_clip() > 0, kSection, "grad_clip",
                 "> 0 when clipping is on", grad_clip());
  require_option(!clamp_min() || !clamp_max() || *clamp_min() <= *clamp_max(), kSection, "clamp",
                 "[min, max] with min <= max, or null",
                 clamp_min().value_or(0) - clamp_max().value_or(0));
  require_option(temperature() > 0, kSection, "temperature", "> 0", temperature());
  require_option(final_step_ratio() >= 0, kSection, "final_step_ratio", ">= 0", final_step_ratio());
}

namespace {

void put(torch::serialize::OutputArchive& a, const std::string& key, const c10::IValue& v) {
  a.write(key, v);
}

// The archived value of `key`, or nullopt when the archive has none.
std::optional<c10::IValue> get(torch::serialize::InputArchive& a, const std::string& key) {
  c10::IValue v;
  if (!a.try_read(key, v)) return std::nullopt;
  return v;
}

// An enum stored under `key`: by its name, or (files of the first generation) by its number.
template <typename E, size_t N>
E archived_enum(const EnumName<E> (&names)[N], const c10::IValue& v, const std::string& key) {
  for (const auto& entry : names) {
    if (v.isInt() ? static_cast<int64_t>(entry.value) == v.toInt()
                  : v.isString() && v.toStringRef() == entry.name) {
      return entry.value;
    }
  }
  throw std::runtime_error(key + ": unknown value " +
                           (v.isString() ? "'" + v.toStringRef() + "'" : c10::str(v)));
}

}  // namespace

void LangevinOptions::save(torch::serialize::OutputArchive& a, const std::string& prefix) const {
  put(a, prefix + "steps", steps());
  put(a, prefix + "step_size", step_size());
  put(a, prefix + "noise_std", noise_std());
  put(a, prefix + "clip_mode", std::string(enum_name(kGradClipNames, clip_mode())));
  put(a, prefix + "grad_clip", grad_clip());
  if (clamp_min()) put(a, prefix + "clamp_min", *clamp_min());
  if (clamp_max()) put(a, prefix + "clamp_max", *clamp_max());
  put(a, prefix + "temperature", temperature());
  put(a, prefix + "schedule", std::string(enum_name(kStepScheduleNames, schedule())));
  put(a, prefix + "final_step_ratio", final_step_ratio());
}

LangevinOptions LangevinOptions::load(torch::serialize::InputArchive& a,
                                      const std::string& prefix) {
  LangevinOptions o;
  if (auto v = get(a, prefix + "steps")) o.steps(v->toInt());
  if (auto v = get(a, prefix + "step_size")) o.step_size(v->toDouble());
  if (auto v = get(a, prefix + "noise_std")) o.noise_std(v->toDouble());
  if (auto v = get(a, prefix + "clip_mode"))
    o.clip_mode(archived_enum(kGradClipNames, *v, prefix + "clip_mode"));
  if (auto v = get(a, prefix + "grad_clip")) o.grad_clip(v->toDouble());
  auto clamp_min = get(a, prefix + "clamp_min"), clamp_max = get(a, prefix + "clamp_max");
  o.clamp_min(clamp_min ? std::optional<double>(clamp_min->toDouble()) : std::nullopt);
  o.clamp_max(clamp_max ? std::optional<double>(clamp_max->toDouble()) : std::nullopt);
  if (auto v = get(a, prefix + "temperature")) o.temperature(v->toDouble());
  if (auto v = get(a, prefix + "schedule")) {
    o.schedule(archived_enum(kStepScheduleNames, *v, prefix + "schedule"));
  }
  if (auto v = get(a, prefix + "final_step_ratio")) o.final_step_ratio(v->toDouble());
  o.validate();
  return o;
}

LangevinSampler::LangevinSampler(LangevinOptions options, ChainExecution execution)
    : options_(std::move(options)) {
  options_.validate();
  if (execution == ChainExecution::kCudaGraph) graphs_ = std::make_shared<CapturedChains>();
}

int64_t LangevinSampler::graph_captures() const { return graphs_ ? graphs_->captures() : 0; }

double LangevinSampler::step_size_at(int64_t step) const {
  const auto& o = options_;
  if (o.schedule() == StepSchedule::kConstant || o.steps() <= 1) return o.step_size();
  const double t = static_cast<double>(step) / static_cast<double>(o.steps() - 1);
  const double r = o.final_step_ratio();
  double factor = 1.0;
  if (o.schedule() == StepSchedule::kLinear) factor = 1.0 + (r - 1.0) * t;
  if (o.schedule() == StepSchedule::kCosine)
    factor = r + (1.0 - r) * 0.5 * (1.0 + std::cos(M_PI * t));
  return o.step_size() * factor;
}

torch::Tensor LangevinSampler::sample(EnergyModel& model, const torch::Tensor& x0,
                                      const torch::Tensor& condition, const torch::Tensor& mask,
                                      const LangevinCallback& callback,
                                      std::optional<at::Generator> generator) const {
  if (!x0.defined() || x0.dim() < 1) throw std::invalid_argument("Langevin: x0 must be [N, ...]");
  if (!x0.is_floating_point()) throw std::invalid_argument("Langevin: x0 must be floating point");
  ChainInputs in{x0.detach(), condition, {}};
  if (mask.defined()) {
    in.keep = mask.to(x0.device()).to(torch::kBool).logical_not();
    try {
      in.keep = in.keep.expand_as(x0);
    } catch (const c10::Error&) {
      throw std::invalid_argument("Langevin: mask shape " + c10::str(mask.sizes()) +
                                  " does not broadcast to x shape " + c10::str(x0.sizes()));
    }
  }
  if (graphs_ && x0.is_cuda() && options_.steps() > 0) {
    return graphs_->run(*this, model, in, callback, generator);
  }
  return run_eagerly(model, in, callback, generator);
}

torch::Tensor LangevinSampler::run_eagerly(EnergyModel& model, const ChainInputs& in,
                                           const LangevinCallback& callback,
                                           const std::optional<at::Generator>& generator) const {
  // One buffer for the chain, updated in place; each step hands autograd a fresh leaf view of
  // it, so no graph survives a step and memory does not grow with the number of steps.
  torch::Tensor x = in.x0.clone();
  torch::Tensor stats;
  if (callback) stats = torch::zeros({options_.steps(), 2}, in.x0.options().dtype(torch::kFloat64));
  run_steps(model, x, in, stats, generator,
            callback ? std::function<void(int64_t)>(
                           [&](int64_t step) { report_step(stats, step, callback); })
                     : nullptr);
  return x;
}

void LangevinSampler::report_step(const torch::Tensor& stats, int64_t step,
                                  const LangevinCallback& callback) const {
  const auto row = stats[step].to(torch::kCPU);
  LangevinStepStats s;
  s.step = step;
  s.step_size = step_size_at(step);
  s.mean_energy = row[0].item<double>();
  s.grad_norm = row[1].item<double>();
  callback(s);
}

void LangevinSampler::run_steps(EnergyModel& model, torch::Tensor& x, const ChainInputs& in,
                                const torch::Tensor& stats,
                                const std::optional<at::Generator>& generator,
                                const std::function<void(int64_t)>& after_step) const {
  const auto& o = options_;
  const int64_t n = x.size(0);
  std::vector<int64_t> per_sample(x.dim(), 1);
  per_sample[0] = n;
  for (int64_t step = 0; step < o.steps(); ++step) {
    {
      torch::NoGradGuard no_grad;
      if (o.noise_std() > 0) {
        x.add_(at::randn(x.sizes(), generator, x.options()), o.noise_std());
      }
      if (in.keep.defined()) x.copy_(torch::where(in.keep, in.x0, x));
    }
    auto [e, g] = model.energy_and_grad(x, in.condition, o.temperature());
    if (e.dim() != 1 || e.size(0) != n) {
      throw std::runtime_error("Langevin: the energy must return [N] = [" + std::to_string(n) +
                               "], got " + c10::str(e.sizes()));
    }
    torch::NoGradGuard no_grad;
    if (stats.defined()) {
      stats[step][0].copy_(e.detach().mean());
      stats[step][1].copy_(g.reshape({n, -1}).norm(2, 1).mean());
    }
    e = torch::Tensor();
    if (o.clip_mode() == GradClip::kElementwise) {
      g.clamp_(-o.grad_clip(), o.grad_clip());
    } else if (o.clip_mode() == GradClip::kL2) {
      auto norms = g.reshape({n, -1}).norm(2, 1).clamp_min(1e-12);
      g.mul_((o.grad_clip() / norms).clamp_max(1.0).reshape(per_sample));
    }
    x.sub_(g, step_size_at(step));
    if (o.clamp_min() || o.clamp_max()) x.clamp_(o.clamp_min(), o.clamp_max());
    if (in.keep.defined()) x.copy_(torch::where(in.keep, in.x0, x));
    if (after_step) after_step(step);
  }
}

}  // namespace ebm
