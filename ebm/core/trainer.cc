#include "ebm/core/trainer.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "ebm/core/icd.h"
#include "ebm/core/performance.h"

namespace ebm {

namespace {

torch::Tensor rng_state(torch::Device device) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(torch::Device device, const torch::Tensor& state) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

ChainExecution chain_execution(const TrainerOptions& o) {
  return o.performance().cuda_graph() ? ChainExecution::kCudaGraph : ChainExecution::kEager;
}

torch::Device buffer_device(const TrainerOptions& o, torch::Device device) {
  return o.performance().buffer_on_device() ? device : torch::Device(torch::kCPU);
}

}  // namespace

void TrainerOptions::validate() const {
  constexpr const char* kSection = "trainer";
  require_option(l2_coeff() >= 0, kSection, "l2_coeff", ">= 0", l2_coeff());
  require_option(warmup_steps() >= 0, kSection, "warmup_steps", ">= 0", warmup_steps());
  require_option(ema_decay() >= 0 && ema_decay() < 1, kSection, "ema_decay", "in [0, 1)",
                 ema_decay());
  require_option(mismatch_weight() >= 0, kSection, "mismatch_weight", ">= 0", mismatch_weight());
  require_option(classify_weight() >= 0, kSection, "classify_weight", ">= 0", classify_weight());
  require_option(classify_weight() == 0 || num_classes() >= 2, kSection, "classify_weight",
                 "0 for a model without classes (the hybrid term needs model.conditional and "
                 ">= 2 classes)",
                 classify_weight());
  require_option(kl_weight() >= 0, kSection, "kl_weight", ">= 0", kl_weight());
  require_option(entropy_weight() >= 0, kSection, "entropy_weight", ">= 0", entropy_weight());
  require_option(augment_prob() >= 0 && augment_prob() <= 1, kSection, "augment_prob", "in [0, 1]",
                 augment_prob());
  require_option(augment_shift() >= 0 && augment_shift() <= 16, kSection, "augment_shift",
                 "in [0, 16] (pixels)", augment_shift());
  require_option(max_bad_steps() >= 1, kSection, "max_bad_steps", ">= 1", max_bad_steps());
  require_option(max_restores() >= 0, kSection, "max_restores", ">= 0", max_restores());
  require_option(snapshot_every() >= 1, kSection, "snapshot_every", ">= 1", snapshot_every());
  adam().validate();
}

ContrastiveDivergenceTrainer::ContrastiveDivergenceTrainer(std::shared_ptr<EnergyModel> model,
                                                           std::vector<int64_t> sample_shape,
                                                           TrainerOptions options,
                                                           torch::Device device)
    : model_(std::move(model)),
      shape_(std::move(sample_shape)),
      options_(std::move(options)),
      device_(device),
      buffer_(shape_, options_.buffer(), buffer_device(options_, device)),
      sampler_(options_.langevin(), chain_execution(options_)) {
  if (!model_) throw std::invalid_argument("trainer: model is null");
  options_.validate();
  if (options_.augment_prob() > 0 && shape_.size() != 3)
    throw std::invalid_argument(
        "trainer.augment_prob needs image samples [C, H, W], the samples are " +
        c10::str(c10::IntArrayRef(shape_)));
  model_->to(device_);
  if (options_.performance().channels_last()) to_channels_last(*model_);
  adam_ = std::make_unique<Adam>(parameters(), options_.adam());
  if (options_.ema_decay() > 0) {
    for (const auto& p : parameters()) ema_.push_back(p.detach().clone());
  }
  warn_ = [rank = options_.rank()](const std::string& msg) {
    if (rank == 0) std::cerr << "warning: " << msg << "\n";
  };
  take_snapshot();
}

std::vector<torch::Tensor> ContrastiveDivergenceTrainer::parameters() const {
  return model_->parameters();
}

double ContrastiveDivergenceTrainer::lr_at(int64_t step) const {
  const double lr = options_.adam().lr();
  if (options_.warmup_steps() <= 0) return lr;
  return lr * std::min(1.0, static_cast<double>(step + 1) / options_.warmup_steps());
}

torch::Tensor ContrastiveDivergenceTrainer::sample(int64_t n, const torch::Tensor& labels,
                                                   bool from_buffer,
                                                   const LangevinCallback& callback) {
  torch::Tensor x0;
  torch::Tensor cond = labels.defined() ? labels.to(device_) : labels;
  if (from_buffer) {
    auto draw = buffer_.draw(n, device_, labels);
    x0 = draw.x;
    cond = draw.condition;
  } else {
    x0 = buffer_.init_states(n).to(device_);
  }
  x0 = image_memory_format(x0, options_.performance().channels_last());
  const bool was_training = model_->is_training();
  model_->eval();
  AutocastScope autocast(options_.autocast_bf16(), device_);
  auto x = sampler_.sample(*model_, x0, cond, {}, callback);
  model_->train(was_training);
  return x;
}

void ContrastiveDivergenceTrainer::check_batch_shape(const torch::Tensor& x_pos) const {
  if (x_pos.sizes().slice(1) != c10::IntArrayRef(shape_))
    throw std::invalid_argument("trainer.step: batch of shape " + c10::str(x_pos.sizes()) +
                                ", expected [B, " + c10::str(shape_) + "]");
}

BufferDraw ContrastiveDivergenceTrainer::sample_negatives(const torch::Tensor& x_pos,
                                                          const torch::Tensor& labels,
                                                          const torch::Tensor& cond) {
  // Chains from the buffer (or fresh), sampled without touching model statistics.
  auto draw = buffer_.draw(x_pos.size(0), device_, labels,
                           options_.buffer().init() == BufferInit::kData ? x_pos : torch::Tensor());
  draw.x = image_memory_format(draw.x, options_.performance().channels_last());
  if (cond.defined() && options_.negative_condition() == NegativeCondition::kBatch) {
    draw.condition = cond;
  }
  if (options_.augment_prob() > 0) {
    draw.x = augment_chain_starts(draw.x, options_.augment_prob(), options_.augment_shift(),
                                  options_.augment_flip());
  }
  model_->eval();
  LangevinCallback measure;
  last_grad_norm_ = -1;
  if (diagnose_) measure = [this](const LangevinStepStats& st) { last_grad_norm_ = st.grad_norm; };
  diagnose_ = false;
  draw.x = sampler_.sample(*model_, draw.x, draw.condition, {}, measure);
  model_->train();
  if (options_.use_buffer()) buffer_.push(draw.x, draw.condition);
  return draw;
}

ContrastiveDivergenceTrainer::Loss ContrastiveDivergenceTrainer::loss(const torch::Tensor& x_pos,
                                                                      const torch::Tensor& cond,
                                                                      const BufferDraw& negatives) {
  const int64_t b = x_pos.size(0);
  // Positives and negatives in one forward. With the mismatch term, a third block: positives
  // rolled by one under the unrolled conditions.
  const bool mismatch = options_.mismatch_weight() > 0 && cond.defined() && b >= 2;
  std::vector<torch::Tensor> xs = {x_pos, negatives.x};
  if (mismatch) xs.push_back(x_pos.roll(-1, 0));
  torch::Tensor all_cond;
  if (cond.defined()) {
    std::vector<torch::Tensor> cs = {cond, negatives.condition.to(device_)};
    if (mismatch) cs.push_back(cond);
    all_cond = torch::cat(cs, 0);
  }
  const auto energies = model_->energy(torch::cat(xs, 0), all_cond).to(torch::kFloat32);
  Loss l;
  l.e_pos = energies.narrow(0, 0, b);
  l.e_neg = energies.narrow(0, b, b);
  switch (options_.objective()) {
    case Objective::kCD:
      l.ml = l.e_pos.mean() - l.e_neg.mean();
      break;
    case Objective::kLogSumExp: {
      auto w = torch::softmax(-l.e_neg.detach(), 0);
      l.ml = l.e_pos.mean() - (w * l.e_neg).sum();
      break;
    }
    case Objective::kSoftplus:
      l.ml = torch::softplus(2.0 * (l.e_pos - l.e_neg)).mean();
      break;
  }
  if (mismatch) {
    l.ml = l.ml + options_.mismatch_weight() *
                      torch::softplus(l.e_pos - energies.narrow(0, 2 * b, b)).mean();
  }
  l.l2 = options_.l2_coeff() * (l.e_pos.pow(2) + l.e_neg.pow(2)).mean();
  l.total = l.ml + l.l2;
  if (options_.classify_weight() > 0) {
    l.classify = classify_loss(x_pos, cond);
    l.total = l.total + options_.classify_weight() * l.classify;
  }
  if (options_.kl_weight() > 0) {
    const torch::Tensor neg_cond =
        negatives.condition.defined() ? negatives.condition.to(device_) : torch::Tensor();
    l.kl =
        icd_kl_term(*model_, negatives.x, neg_cond, sampler_.options(), options_.entropy_weight());
    l.total = l.total + options_.kl_weight() * l.kl;
  }
  return l;
}

torch::Tensor ContrastiveDivergenceTrainer::classify_loss(const torch::Tensor& x_pos,
                                                          const torch::Tensor& labels) {
  if (!labels.defined() || labels.dim() != 1 || labels.scalar_type() != torch::kLong)
    throw std::invalid_argument(
        "trainer.classify_weight: the hybrid term needs integer class labels [B] with the batch");
  auto logits = -class_energies(*model_, x_pos, options_.num_classes()).to(torch::kFloat32);
  if (options_.classify_over() == ClassifyOver::kBatch) {
    auto present = torch::zeros({options_.num_classes()},
                                torch::TensorOptions().dtype(torch::kBool).device(device_))
                       .index_fill_(0, labels, true);
    logits = logits.masked_fill(present.logical_not().unsqueeze(0),
                                -std::numeric_limits<float>::infinity());
  }
  return torch::nn::functional::cross_entropy(logits, labels);
}

void ContrastiveDivergenceTrainer::sync_gradients(const std::vector<torch::Tensor>& params) {
  if (!grad_sync_) return;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  grad_sync_(grads);
}

ContrastiveDivergenceTrainer::StepScalars ContrastiveDivergenceTrainer::step_scalars(
    const Loss& l, const std::vector<torch::Tensor>& params) const {
  // The guard sums each gradient: a NaN or an infinity anywhere makes its sum non-finite (as does
  // a sum beyond float's range, a step as bad), at a fraction of an element-wise isfinite's cost.
  std::vector<torch::Tensor> sums{l.total.detach().reshape({1})};
  for (const auto& p : params) {
    if (p.grad().defined()) sums.push_back(p.grad().sum().reshape({1}));
  }
  const auto zero = torch::zeros({}, l.total.options());
  auto value = [&](const torch::Tensor& t) {
    return (t.defined() ? t.detach() : zero).to(torch::kFloat64).reshape({});
  };
  // One host transfer for the verdict and every reported number.
  const auto host = torch::stack({torch::isfinite(torch::cat(sums)).all().to(torch::kFloat64),
                                  value(l.total), value(l.e_pos.mean()), value(l.e_neg.mean()),
                                  value(l.ml), value(l.l2), value(l.classify), value(l.kl)})
                        .to(torch::kCPU);
  const double* h = host.data_ptr<double>();
  return {h[0] != 0, h[1], h[2], h[3], h[4], h[5], h[6], h[7]};
}

void ContrastiveDivergenceTrainer::skip_non_finite_step(TrainStepResult& r) {
  adam_->zero_grad();
  r.skipped = true;
  ++bad_in_a_row_;
  warn_("step " + std::to_string(step_) + ": non-finite loss or gradient (loss " +
        std::to_string(r.loss) + ", E+ " + std::to_string(r.e_pos) + ", E- " +
        std::to_string(r.e_neg) + "); step skipped (" + std::to_string(bad_in_a_row_) + "/" +
        std::to_string(options_.max_bad_steps()) + " in a row)");
  if (bad_in_a_row_ < options_.max_bad_steps()) return;
  if (restores_ >= options_.max_restores()) {
    throw TrainingDiverged(
        "training diverged: " + std::to_string(bad_in_a_row_) +
        " non-finite steps in a row after " + std::to_string(restores_) +
        " restorations of the last good state with halved Langevin step sizes (now " +
        std::to_string(sampler_.options().step_size()) +
        "); lower trainer.lr or langevin.step_size, or raise trainer.l2_coeff");
  }
  restore_snapshot();
  auto lopts = sampler_.options();
  lopts.step_size(lopts.step_size() * 0.5);
  sampler_ = LangevinSampler(lopts, chain_execution(options_));
  ++restores_;
  bad_in_a_row_ = 0;
  r.restored = true;
  warn_("restored the last good state; Langevin step size halved to " +
        std::to_string(lopts.step_size()));
}

void ContrastiveDivergenceTrainer::update(const std::vector<torch::Tensor>& params, double lr) {
  bad_in_a_row_ = 0;
  adam_->step(lr);
  if (!ema_.empty()) {
    torch::NoGradGuard no_grad;
    const double d = options_.ema_decay();
    for (size_t i = 0; i < ema_.size(); ++i) ema_[i].mul_(d).add_(params[i].detach(), 1.0 - d);
  }
  if (++good_since_snapshot_ >= options_.snapshot_every()) take_snapshot();
}

torch::Tensor ContrastiveDivergenceTrainer::positives(const torch::Tensor& x_pos_in) const {
  check_batch_shape(x_pos_in);
  auto x_pos = x_pos_in.to(device_, torch::kFloat32, /*non_blocking=*/true);
  if (options_.dequantize()) {
    x_pos = x_pos * (255.0 / 256.0) + torch::rand_like(x_pos) / 256.0;
  }
  return image_memory_format(x_pos, options_.performance().channels_last());
}

TrainStepResult ContrastiveDivergenceTrainer::step(const torch::Tensor& x_pos_in,
                                                   const torch::Tensor& labels) {
  const auto x_pos = positives(x_pos_in);
  const torch::Tensor cond = labels.defined() ? labels.to(device_) : labels;
  AutocastScope autocast(options_.autocast_bf16(), device_);
  return contrast(x_pos, cond, sample_negatives(x_pos, labels, cond));
}

TrainStepResult ContrastiveDivergenceTrainer::step_on(const torch::Tensor& x_pos_in,
                                                      const BufferDraw& negatives,
                                                      const torch::Tensor& labels) {
  const auto x_pos = positives(x_pos_in);
  if (negatives.x.sizes() != x_pos.sizes())
    throw std::invalid_argument("trainer.step_on: negatives of shape " +
                                c10::str(negatives.x.sizes()) + " for a batch of shape " +
                                c10::str(x_pos.sizes()));
  const torch::Tensor cond = labels.defined() ? labels.to(device_) : labels;
  BufferDraw draw = negatives;
  draw.x = draw.x.to(device_, torch::kFloat32);
  AutocastScope autocast(options_.autocast_bf16(), device_);
  return contrast(x_pos, cond, draw);
}

TrainStepResult ContrastiveDivergenceTrainer::contrast(const torch::Tensor& x_pos,
                                                       const torch::Tensor& cond,
                                                       const BufferDraw& negatives) {
  const Loss l = loss(x_pos, cond, negatives);
  adam_->zero_grad();
  l.total.backward();
  const auto params = parameters();
  sync_gradients(params);

  TrainStepResult r;
  r.lr = lr_at(step_);
  r.langevin_step_size = sampler_.options().step_size();
  const StepScalars scalars = step_scalars(l, params);
  const bool finite = vote_ ? vote_(scalars.finite) : scalars.finite;
  r.loss = scalars.loss;
  r.e_pos = scalars.e_pos;
  r.e_neg = scalars.e_neg;
  r.ml_loss = scalars.ml;
  r.l2_loss = scalars.l2;
  r.classify_loss = scalars.classify;
  r.kl_loss = scalars.kl;
  r.energies_pos = l.e_pos.detach();
  r.energies_neg = l.e_neg.detach();
  r.langevin_grad_norm = last_grad_norm_;
  last_grad_norm_ = -1;
  r.negatives = negatives;
  if (finite) {
    update(params, r.lr);
  } else {
    skip_non_finite_step(r);
  }
  r.step = ++step_;
  return r;
}

void ContrastiveDivergenceTrainer::swap_ema() {
  torch::NoGradGuard no_grad;
  auto params = parameters();
  for (size_t i = 0; i < ema_.size(); ++i) {
    auto tmp = params[i].detach().clone();
    params[i].copy_(ema_[i]);
    ema_[i].copy_(tmp);
  }
}

void ContrastiveDivergenceTrainer::save_weights(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive model_archive;
  model_->save(model_archive);
  archive.write("model", model_archive);
  adam_->save(archive, "adam.");
  for (size_t i = 0; i < ema_.size(); ++i) archive.write("ema." + std::to_string(i), ema_[i]);
}

void ContrastiveDivergenceTrainer::load_weights(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  model_->load(model_archive);
  model_->to(device_);
  adam_->load(archive, "adam.");
  for (size_t i = 0; i < ema_.size(); ++i) {
    torch::Tensor t;
    archive.read("ema." + std::to_string(i), t);
    ema_[i].copy_(t);
  }
}

void ContrastiveDivergenceTrainer::take_snapshot() {
  torch::serialize::OutputArchive archive;
  save_weights(archive);
  std::ostringstream out;
  archive.save_to(out);
  snapshot_ = out.str();
  good_since_snapshot_ = 0;
}

void ContrastiveDivergenceTrainer::restore_snapshot() {
  torch::serialize::InputArchive archive;
  std::istringstream in(snapshot_);
  archive.load_from(in, device_);
  load_weights(archive);
}

std::vector<torch::Tensor> ContrastiveDivergenceTrainer::replicated_state() {
  std::vector<torch::Tensor> all = parameters();
  for (const auto& b : model_->buffers()) all.push_back(b);
  all.insert(all.end(), ema_.begin(), ema_.end());
  for (const auto& m : adam_->moments()) all.push_back(m);
  return all;
}

void ContrastiveDivergenceTrainer::save_local(torch::serialize::OutputArchive& archive) const {
  buffer_.save(archive, "buffer.");
  archive.write("rng.cpu", rng_state(torch::kCPU));
  if (device_.is_cuda()) archive.write("rng.cuda", rng_state(device_));
}

void ContrastiveDivergenceTrainer::reset_buffer() {
  buffer_ = ReplayBuffer(shape_, options_.buffer(), buffer_device(options_, device_));
}

void ContrastiveDivergenceTrainer::load_local(torch::serialize::InputArchive& archive) {
  buffer_.load(archive, "buffer.");
  torch::Tensor cpu_state, cuda_state;
  archive.read("rng.cpu", cpu_state);
  set_rng_state(torch::kCPU, cpu_state);
  if (device_.is_cuda() && archive.try_read("rng.cuda", cuda_state))
    set_rng_state(device_, cuda_state);
}

void ContrastiveDivergenceTrainer::save(torch::serialize::OutputArchive& archive) const {
  save_weights(archive);
  save_local(archive);
  archive.write(
      "trainer.counters",
      torch::tensor({step_, bad_in_a_row_, restores_, good_since_snapshot_}, torch::kLong));
  archive.write("trainer.langevin_step_size",
                torch::tensor(sampler_.options().step_size(), torch::kFloat64));
}

void ContrastiveDivergenceTrainer::load(torch::serialize::InputArchive& archive) {
  load_weights(archive);
  load_local(archive);
  torch::Tensor counters, step_size;
  archive.read("trainer.counters", counters);
  archive.read("trainer.langevin_step_size", step_size);
  step_ = counters[0].item<int64_t>();
  bad_in_a_row_ = counters[1].item<int64_t>();
  restores_ = counters[2].item<int64_t>();
  good_since_snapshot_ = counters[3].item<int64_t>();
  auto lopts = sampler_.options();
  lopts.step_size(step_size.item<double>());
  sampler_ = LangevinSampler(lopts, chain_execution(options_));
  take_snapshot();
  good_since_snapshot_ = counters[3].item<int64_t>();
}

}  // namespace ebm
