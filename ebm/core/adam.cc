#include "ebm/core/adam.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <utility>

namespace ebm {

void AdamOptions::validate() const {
  constexpr const char* kSection = "trainer";
  require_option(lr() > 0, kSection, "lr", "> 0", lr());
  require_option(beta1() >= 0 && beta1() < 1, kSection, "beta1", "in [0, 1)", beta1());
  require_option(beta2() >= 0 && beta2() < 1, kSection, "beta2", "in [0, 1)", beta2());
}

Adam::Adam(std::vector<torch::Tensor> params, AdamOptions options)
    : params_(std::move(params)), options_(options) {
  options_.validate();
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

std::vector<torch::Tensor> Adam::moments() const {
  std::vector<torch::Tensor> all(m_);
  all.insert(all.end(), v_.begin(), v_.end());
  return all;
}

void Adam::zero_grad() {
  for (auto& p : params_) {
    if (p.mutable_grad().defined()) p.mutable_grad().zero_();
  }
}

void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  const auto& o = options_;
  const double b1 = o.beta1(), b2 = o.beta2();
  const double prev_c2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  ++step_;
  const double c1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double c2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    auto g = p.grad();
    if (o.weight_decay() > 0) g = g + o.weight_decay() * p;
    if (o.clip_grad()) {
      // v_hat of the previous steps; 0 before the first step, so the first bound is the offset.
      auto v_hat = step_ > 1 ? v_[i] / prev_c2 : torch::zeros_like(v_[i]);
      auto bound = v_hat.sqrt() * o.clip_scale() + o.clip_offset();
      g = torch::max(torch::min(g, bound), -bound);
    }
    m_[i].mul_(b1).add_(g, 1.0 - b1);
    v_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    auto denom = (v_[i] / c2).sqrt().add_(o.eps());
    p.addcdiv_(m_[i], denom, -lr / c1);
  }
}

void Adam::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "step", torch::tensor(step_, torch::kLong));
  for (size_t i = 0; i < params_.size(); ++i) {
    archive.write(prefix + "m." + std::to_string(i), m_[i]);
    archive.write(prefix + "v." + std::to_string(i), v_[i]);
  }
}

void Adam::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor step;
  archive.read(prefix + "step", step);
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor m, v;
    archive.read(prefix + "m." + std::to_string(i), m);
    archive.read(prefix + "v." + std::to_string(i), v);
    if (m.sizes() != m_[i].sizes() || v.sizes() != v_[i].sizes())
      throw std::runtime_error("adam: checkpoint moment " + std::to_string(i) + " has shape " +
                               c10::str(m.sizes()) + ", the model needs " +
                               c10::str(m_[i].sizes()));
    m_[i].copy_(m);
    v_[i].copy_(v);
  }
  step_ = step.item<int64_t>();
}

}  // namespace ebm
