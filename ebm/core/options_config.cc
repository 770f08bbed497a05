#include "ebm/core/options_config.h"

namespace ebm {

LangevinOptions langevin_options(const ConfigSection& s) {
  LangevinOptions o;
  o.steps(s.get<int64_t>("steps", o.steps()));
  s.check(o.steps() >= 0, "steps", ">= 0");
  o.step_size(s.get<double>("step_size", o.step_size()));
  s.check(o.step_size() >= 0, "step_size", ">= 0");
  o.noise_std(s.get<double>("noise_std", o.noise_std()));
  s.check(o.noise_std() >= 0, "noise_std", ">= 0");
  const auto clip = s.choice("clip_mode", "elementwise", {"none", "elementwise", "l2"});
  o.clip_mode(clip == "none" ? GradClip::kNone
              : clip == "l2" ? GradClip::kL2
                             : GradClip::kElementwise);
  o.grad_clip(s.get<double>("grad_clip", o.grad_clip()));
  s.check(o.clip_mode() == GradClip::kNone || o.grad_clip() > 0, "grad_clip", "> 0");
  // clamp: [min, max] (default [0, 1], for images) or null for no box.
  if (s.is_null("clamp")) {
    o.clamp_min(std::nullopt).clamp_max(std::nullopt);
  } else {
    const auto c = s.get<std::vector<double>>("clamp", {0.0, 1.0});
    s.check(c.size() == 2 && c[0] <= c[1], "clamp", "[min, max] with min <= max, or null");
    o.clamp_min(c[0]).clamp_max(c[1]);
  }
  o.temperature(s.get<double>("temperature", o.temperature()));
  s.check(o.temperature() > 0, "temperature", "> 0");
  const auto sched = s.choice("schedule", "constant", {"constant", "linear", "cosine"});
  o.schedule(sched == "linear"   ? StepSchedule::kLinear
             : sched == "cosine" ? StepSchedule::kCosine
                                 : StepSchedule::kConstant);
  o.final_step_ratio(s.get<double>("final_step_ratio", o.final_step_ratio()));
  s.check(o.final_step_ratio() >= 0, "final_step_ratio", ">= 0");
  return o;
}

ReplayBufferOptions buffer_options(const ConfigSection& s) {
  ReplayBufferOptions o;
  o.capacity(s.get<int64_t>("capacity", o.capacity()));
  s.check(o.capacity() > 0, "capacity", "> 0");
  o.reinit_prob(s.get<double>("reinit_prob", o.reinit_prob()));
  s.check(o.reinit_prob() >= 0 && o.reinit_prob() <= 1, "reinit_prob", "in [0, 1]");
  o.policy(s.choice("policy", "fifo", {"fifo", "reservoir"}) == "fifo" ? BufferPolicy::kFifo
                                                                       : BufferPolicy::kReservoir);
  const auto init = s.choice("init", "uniform", {"uniform", "gaussian", "data"});
  o.init(init == "uniform"    ? BufferInit::kUniform
         : init == "gaussian" ? BufferInit::kGaussian
                              : BufferInit::kData);
  o.init_low(s.get<double>("init_low", o.init_low()));
  o.init_high(s.get<double>("init_high", o.init_high()));
  s.check(o.init_low() < o.init_high(), "init_high", "> init_low");
  o.init_mean(s.get<double>("init_mean", o.init_mean()));
  o.init_std(s.get<double>("init_std", o.init_std()));
  s.check(o.init_std() >= 0, "init_std", ">= 0");
  o.storage(s.choice("storage", "uint8", {"uint8", "float32"}) == "uint8"
                ? BufferStorage::kUint8
                : BufferStorage::kFloat32);
  return o;
}

TrainerOptions trainer_options(const ConfigSection& t, const ConfigSection& langevin,
                               const ConfigSection& buffer) {
  TrainerOptions o;
  const auto obj = t.choice("objective", "cd", {"cd", "logsumexp", "softplus"});
  o.objective(obj == "cd"          ? Objective::kCD
              : obj == "logsumexp" ? Objective::kLogSumExp
                                   : Objective::kSoftplus);
  o.l2_coeff(t.get<double>("l2_coeff", o.l2_coeff()));
  t.check(o.l2_coeff() >= 0, "l2_coeff", ">= 0");
  AdamOptions a;
  a.lr(t.get<double>("lr", a.lr()));
  t.check(a.lr() > 0, "lr", "> 0");
  a.beta1(t.get<double>("beta1", a.beta1()));
  t.check(a.beta1() >= 0 && a.beta1() < 1, "beta1", "in [0, 1)");
  a.beta2(t.get<double>("beta2", a.beta2()));
  t.check(a.beta2() >= 0 && a.beta2() < 1, "beta2", "in [0, 1)");
  a.eps(t.get<double>("eps", a.eps()));
  a.weight_decay(t.get<double>("weight_decay", a.weight_decay()));
  a.clip_grad(t.get<bool>("clip_grad", a.clip_grad()));
  o.adam(a);
  o.warmup_steps(t.get<int64_t>("warmup_steps", o.warmup_steps()));
  t.check(o.warmup_steps() >= 0, "warmup_steps", ">= 0");
  o.ema_decay(t.get<double>("ema_decay", o.ema_decay()));
  t.check(o.ema_decay() >= 0 && o.ema_decay() < 1, "ema_decay", "in [0, 1)");
  o.dequantize(t.get<bool>("dequantize", o.dequantize()));
  o.use_buffer(t.get<bool>("use_buffer", o.use_buffer()));
  o.negative_condition(t.choice("negative_condition", "buffer", {"buffer", "batch"}) == "batch"
                           ? NegativeCondition::kBatch
                           : NegativeCondition::kBuffer);
  o.mismatch_weight(t.get<double>("mismatch_weight", o.mismatch_weight()));
  t.check(o.mismatch_weight() >= 0, "mismatch_weight", ">= 0");
  o.max_bad_steps(t.get<int64_t>("max_bad_steps", o.max_bad_steps()));
  t.check(o.max_bad_steps() >= 1, "max_bad_steps", ">= 1");
  o.max_restores(t.get<int64_t>("max_restores", o.max_restores()));
  t.check(o.max_restores() >= 0, "max_restores", ">= 0");
  o.snapshot_every(t.get<int64_t>("snapshot_every", o.snapshot_every()));
  t.check(o.snapshot_every() >= 1, "snapshot_every", ">= 1");
  o.langevin(langevin_options(langevin));
  o.buffer(buffer_options(buffer));
  return o;
}

}  // namespace ebm
