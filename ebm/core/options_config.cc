#include "ebm/core/options_config.h"

#include <optional>
#include <vector>

namespace ebm {

LangevinOptions langevin_options(const ConfigSection& s) {
  LangevinOptions o;
  o.steps(s.get<int64_t>("steps", o.steps()));
  o.step_size(s.get<double>("step_size", o.step_size()));
  o.noise_std(s.get<double>("noise_std", o.noise_std()));
  o.clip_mode(s.choice("clip_mode", kGradClipNames, o.clip_mode()));
  o.grad_clip(s.get<double>("grad_clip", o.grad_clip()));
  // clamp: [min, max] (default [0, 1], for images) or null for no box.
  if (s.is_null("clamp")) {
    o.clamp_min(std::nullopt).clamp_max(std::nullopt);
  } else {
    const auto c = s.get<std::vector<double>>("clamp", {*o.clamp_min(), *o.clamp_max()});
    s.check(c.size() == 2, "clamp", "[min, max] with min <= max, or null");
    o.clamp_min(c[0]).clamp_max(c[1]);
  }
  o.temperature(s.get<double>("temperature", o.temperature()));
  o.schedule(s.choice("schedule", kStepScheduleNames, o.schedule()));
  o.final_step_ratio(s.get<double>("final_step_ratio", o.final_step_ratio()));
  s.validate(o);
  return o;
}

ReplayBufferOptions buffer_options(const ConfigSection& s) {
  ReplayBufferOptions o;
  o.capacity(s.get<int64_t>("capacity", o.capacity()));
  o.reinit_prob(s.get<double>("reinit_prob", o.reinit_prob()));
  o.policy(s.choice("policy", kBufferPolicyNames, o.policy()));
  o.init(s.choice("init", kBufferInitNames, o.init()));
  o.init_low(s.get<double>("init_low", o.init_low()));
  o.init_high(s.get<double>("init_high", o.init_high()));
  o.init_mean(s.get<double>("init_mean", o.init_mean()));
  o.init_std(s.get<double>("init_std", o.init_std()));
  o.storage(s.choice("storage", kBufferStorageNames, o.storage()));
  s.validate(o);
  return o;
}

PerformanceOptions performance_options(const ConfigSection& s) {
  PerformanceOptions o;
  o.cuda_graph(s.get<bool>("cuda_graph", o.cuda_graph()));
  o.channels_last(s.get<bool>("channels_last", o.channels_last()));
  o.tf32(s.get<bool>("tf32", o.tf32()));
  o.cudnn_benchmark(s.get<bool>("cudnn_benchmark", o.cudnn_benchmark()));
  o.buffer_on_device(s.get<bool>("buffer_on_device", o.buffer_on_device()));
  o.prefetch(s.get<bool>("prefetch", o.prefetch()));
  o.async_checkpoints(s.get<bool>("async_checkpoints", o.async_checkpoints()));
  return o;
}

namespace {

// The Adam keys of the trainer section.
AdamOptions adam_options(const ConfigSection& t) {
  AdamOptions a;
  a.lr(t.get<double>("lr", a.lr()));
  a.beta1(t.get<double>("beta1", a.beta1()));
  a.beta2(t.get<double>("beta2", a.beta2()));
  a.eps(t.get<double>("eps", a.eps()));
  a.weight_decay(t.get<double>("weight_decay", a.weight_decay()));
  a.clip_grad(t.get<bool>("clip_grad", a.clip_grad()));
  return a;
}

}  // namespace

TrainerOptions trainer_options(const ConfigSection& t, const ConfigSection& langevin,
                               const ConfigSection& buffer, int64_t num_classes) {
  TrainerOptions o;
  o.num_classes(num_classes);
  o.objective(t.choice("objective", kObjectiveNames, o.objective()));
  o.l2_coeff(t.get<double>("l2_coeff", o.l2_coeff()));
  o.adam(adam_options(t));
  o.warmup_steps(t.get<int64_t>("warmup_steps", o.warmup_steps()));
  o.ema_decay(t.get<double>("ema_decay", o.ema_decay()));
  o.dequantize(t.get<bool>("dequantize", o.dequantize()));
  o.use_buffer(t.get<bool>("use_buffer", o.use_buffer()));
  o.negative_condition(
      t.choice("negative_condition", kNegativeConditionNames, o.negative_condition()));
  o.mismatch_weight(t.get<double>("mismatch_weight", o.mismatch_weight()));
  o.classify_weight(t.get<double>("classify_weight", o.classify_weight()));
  o.classify_over(t.choice("classify_over", kClassifyOverNames, o.classify_over()));
  o.kl_weight(t.get<double>("kl_weight", o.kl_weight()));
  o.entropy_weight(t.get<double>("entropy_weight", o.entropy_weight()));
  o.augment_prob(t.get<double>("augment_prob", o.augment_prob()));
  o.augment_shift(t.get<int64_t>("augment_shift", o.augment_shift()));
  o.augment_flip(t.get<bool>("augment_flip", o.augment_flip()));
  o.max_bad_steps(t.get<int64_t>("max_bad_steps", o.max_bad_steps()));
  o.max_restores(t.get<int64_t>("max_restores", o.max_restores()));
  o.snapshot_every(t.get<int64_t>("snapshot_every", o.snapshot_every()));
  o.autocast_bf16(t.get<bool>("autocast_bf16", o.autocast_bf16()));
  t.validate(o);
  o.langevin(langevin_options(langevin));
  o.buffer(buffer_options(buffer));
  return o;
}

}  // namespace ebm
