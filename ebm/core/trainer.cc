#include "ebm/core/trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <sstream>

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

// bf16 autocast for the scope (CUDA only), restoring the previous state on exit.
class AutocastScope {
 public:
  explicit AutocastScope(bool on) : on_(on) {
    if (!on_) return;
    was_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  }
  ~AutocastScope() {
    if (!on_) return;
    at::autocast::set_autocast_enabled(at::kCUDA, was_);
    at::autocast::clear_cache();
  }

 private:
  bool on_, was_ = false;
};

}  // namespace

ContrastiveDivergenceTrainer::ContrastiveDivergenceTrainer(std::shared_ptr<EnergyModel> model,
                                                           std::vector<int64_t> sample_shape,
                                                           TrainerOptions options,
                                                           torch::Device device)
    : model_(std::move(model)),
      shape_(std::move(sample_shape)),
      options_(std::move(options)),
      device_(device),
      buffer_(shape_, options_.buffer()),
      sampler_(options_.langevin()) {
  if (!model_) throw std::invalid_argument("trainer: model is null");
  if (options_.l2_coeff() < 0) throw std::invalid_argument("trainer.l2_coeff must be >= 0");
  if (options_.ema_decay() < 0 || options_.ema_decay() >= 1)
    throw std::invalid_argument("trainer.ema_decay must be in [0, 1)");
  if (options_.max_bad_steps() < 1)
    throw std::invalid_argument("trainer.max_bad_steps must be >= 1");
  if (options_.autocast_bf16() && !device_.is_cuda())
    throw std::invalid_argument("trainer.autocast_bf16 needs a CUDA device, the device is " +
                                device_.str());
  model_->to(device_);
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
  const bool was_training = model_->is_training();
  model_->eval();
  AutocastScope autocast(options_.autocast_bf16());
  auto x = sampler_.sample(*model_, x0, cond, {}, callback);
  model_->train(was_training);
  return x;
}

TrainStepResult ContrastiveDivergenceTrainer::step(const torch::Tensor& x_pos_in,
                                                   const torch::Tensor& labels) {
  const int64_t b = x_pos_in.size(0);
  if (x_pos_in.sizes().slice(1) != c10::IntArrayRef(shape_))
    throw std::invalid_argument("trainer.step: batch of shape " + c10::str(x_pos_in.sizes()) +
                                ", expected [B, " + c10::str(shape_) + "]");
  auto x_pos = x_pos_in.to(device_, torch::kFloat32);
  if (options_.dequantize()) {
    x_pos = x_pos * (255.0 / 256.0) + torch::rand_like(x_pos) / 256.0;
  }
  torch::Tensor cond = labels.defined() ? labels.to(device_) : labels;

  AutocastScope autocast(options_.autocast_bf16());
  // Negatives: chains from the buffer (or fresh), sampled without touching model statistics.
  auto draw = buffer_.draw(b, device_, labels,
                           options_.buffer().init() == BufferInit::kData ? x_pos : torch::Tensor());
  if (cond.defined() && options_.negative_condition() == NegativeCondition::kBatch) {
    draw.condition = cond;
  }
  model_->eval();
  auto x_neg = sampler_.sample(*model_, draw.x, draw.condition);
  model_->train();
  if (options_.use_buffer()) buffer_.push(x_neg, draw.condition);

  // Loss on positives and negatives in one forward.
  // With the mismatch term, a third block: positives rolled by one under the unrolled conditions.
  const bool mismatch = options_.mismatch_weight() > 0 && cond.defined() && b >= 2;
  std::vector<torch::Tensor> xs = {x_pos, x_neg};
  if (mismatch) xs.push_back(x_pos.roll(-1, 0));
  auto both = torch::cat(xs, 0);
  torch::Tensor both_cond;
  if (cond.defined()) {
    std::vector<torch::Tensor> cs = {cond, draw.condition.to(device_)};
    if (mismatch) cs.push_back(cond);
    both_cond = torch::cat(cs, 0);
  }
  auto energies = model_->energy(both, both_cond).to(torch::kFloat32);
  auto e_pos = energies.narrow(0, 0, b), e_neg = energies.narrow(0, b, b);
  torch::Tensor ml;
  switch (options_.objective()) {
    case Objective::kCD:
      ml = e_pos.mean() - e_neg.mean();
      break;
    case Objective::kLogSumExp: {
      auto w = torch::softmax(-e_neg.detach(), 0);
      ml = e_pos.mean() - (w * e_neg).sum();
      break;
    }
    case Objective::kSoftplus:
      ml = torch::softplus(2.0 * (e_pos - e_neg)).mean();
      break;
  }
  if (mismatch) {
    ml = ml +
         options_.mismatch_weight() * torch::softplus(e_pos - energies.narrow(0, 2 * b, b)).mean();
  }
  auto l2 = options_.l2_coeff() * (e_pos.pow(2) + e_neg.pow(2)).mean();
  auto loss = ml + l2;

  adam_->zero_grad();
  loss.backward();
  auto params = parameters();
  if (grad_sync_) {
    std::vector<torch::Tensor> grads;
    for (auto& p : params) {
      if (p.grad().defined()) grads.push_back(p.grad());
    }
    grad_sync_(grads);
  }

  TrainStepResult r;
  r.lr = lr_at(step_);
  r.langevin_step_size = sampler_.options().step_size();
  // One host sync for the whole guard: the loss and every gradient finite?
  auto finite = torch::isfinite(loss.detach());
  for (auto& p : params) {
    if (p.grad().defined()) finite = finite.logical_and(torch::isfinite(p.grad()).all());
  }
  r.loss = loss.item<double>();
  r.e_pos = e_pos.mean().item<double>();
  r.e_neg = e_neg.mean().item<double>();
  r.ml_loss = ml.item<double>();
  r.l2_loss = l2.item<double>();
  if (!finite.item<bool>()) {
    adam_->zero_grad();
    r.skipped = true;
    ++bad_in_a_row_;
    warn_("step " + std::to_string(step_) + ": non-finite loss or gradient (loss " +
          std::to_string(r.loss) + ", E+ " + std::to_string(r.e_pos) + ", E- " +
          std::to_string(r.e_neg) + "); step skipped (" + std::to_string(bad_in_a_row_) + "/" +
          std::to_string(options_.max_bad_steps()) + " in a row)");
    if (bad_in_a_row_ >= options_.max_bad_steps()) {
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
      sampler_ = LangevinSampler(lopts);
      ++restores_;
      bad_in_a_row_ = 0;
      r.restored = true;
      warn_("restored the last good state; Langevin step size halved to " +
            std::to_string(lopts.step_size()));
    }
    ++step_;
    r.step = step_;
    return r;
  }
  bad_in_a_row_ = 0;
  adam_->step(r.lr);
  if (!ema_.empty()) {
    torch::NoGradGuard no_grad;
    const double d = options_.ema_decay();
    for (size_t i = 0; i < ema_.size(); ++i) ema_[i].mul_(d).add_(params[i].detach(), 1.0 - d);
  }
  ++step_;
  if (++good_since_snapshot_ >= options_.snapshot_every()) take_snapshot();
  r.step = step_;
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

void ContrastiveDivergenceTrainer::save(torch::serialize::OutputArchive& archive) const {
  save_weights(archive);
  buffer_.save(archive, "buffer.");
  archive.write(
      "trainer.counters",
      torch::tensor({step_, bad_in_a_row_, restores_, good_since_snapshot_}, torch::kLong));
  archive.write("trainer.langevin_step_size",
                torch::tensor(sampler_.options().step_size(), torch::kFloat64));
  archive.write("rng.cpu", rng_state(torch::kCPU));
  if (device_.is_cuda()) archive.write("rng.cuda", rng_state(device_));
}

void ContrastiveDivergenceTrainer::load(torch::serialize::InputArchive& archive) {
  load_weights(archive);
  buffer_.load(archive, "buffer.");
  torch::Tensor counters, step_size, cpu_state, cuda_state;
  archive.read("trainer.counters", counters);
  archive.read("trainer.langevin_step_size", step_size);
  step_ = counters[0].item<int64_t>();
  bad_in_a_row_ = counters[1].item<int64_t>();
  restores_ = counters[2].item<int64_t>();
  good_since_snapshot_ = counters[3].item<int64_t>();
  auto lopts = sampler_.options();
  lopts.step_size(step_size.item<double>());
  sampler_ = LangevinSampler(lopts);
  archive.read("rng.cpu", cpu_state);
  set_rng_state(torch::kCPU, cpu_state);
  if (device_.is_cuda() && archive.try_read("rng.cuda", cuda_state))
    set_rng_state(device_, cuda_state);
  take_snapshot();
  good_since_snapshot_ = counters[3].item<int64_t>();
}

}  // namespace ebm
