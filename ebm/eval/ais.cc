#include "ebm/eval/ais.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "ebm/core/options.h"

namespace ebm::eval {

void AisOptions::validate() const {
  constexpr const char* kSection = "ais";
  require_option(chains() >= 2, kSection, "chains", ">= 2", chains());
  require_option(temperatures() >= 1 && temperatures() <= 1000000, kSection, "temperatures",
                 "in [1, 1000000]", temperatures());
  require_option(power() > 0, kSection, "power", "> 0", power());
  require_option(mala_steps() >= 1 && mala_steps() <= 1000, kSection, "mala_steps", "in [1, 1000]",
                 mala_steps());
  require_option(step_size() > 0, kSection, "step_size", "> 0", step_size());
  require_option(target_acceptance() > 0 && target_acceptance() < 1, kSection, "target_acceptance",
                 "in (0, 1)", target_acceptance());
  require_option(high() > low(), kSection, "high", "> low", high());
  require_option(batch() >= 0, kSection, "batch", ">= 0 (0 = all chains at once)", batch());
}

namespace {

// Energies and their input gradients, in batches of `batch` rows (no graph kept).
struct EnergyAndGrad {
  torch::Tensor e, g;
};

EnergyAndGrad energy_and_grad(EnergyModel& model, const torch::Tensor& x,
                              const torch::Tensor& condition, int64_t batch) {
  const int64_t n = x.size(0), b = batch > 0 ? batch : n;
  std::vector<torch::Tensor> es, gs;
  for (int64_t i = 0; i < n; i += b) {
    const int64_t k = std::min(b, n - i);
    auto xi = x.narrow(0, i, k).detach().requires_grad_(true);
    auto ci = condition.defined() ? condition.narrow(0, i, k) : torch::Tensor();
    auto e = model.energy(xi, ci).to(torch::kFloat64);
    es.push_back(e.detach());
    gs.push_back(torch::autograd::grad({e.sum()}, {xi})[0].to(torch::kFloat64));
  }
  return {torch::cat(es), torch::cat(gs)};
}

// log of the MALA proposal density q(to | from) up to a constant shared by both directions.
torch::Tensor log_proposal(const torch::Tensor& to, const torch::Tensor& from,
                           const torch::Tensor& grad_from, double beta, double step) {
  return -(to - from + step * beta * grad_from).pow(2).flatten(1).sum(1) / (4.0 * step);
}

// The chains' state: positions, energies, gradients.
struct Chains {
  torch::Tensor x, e, g;
};

// One MALA transition leaving exp(-beta E) on the box invariant; returns the acceptance rate.
double mala_step(EnergyModel& model, Chains& c, const torch::Tensor& condition, double beta,
                 double step, const AisOptions& o, at::Generator& gen) {
  auto noise = torch::randn(c.x.sizes(), gen, torch::kFloat64).to(c.x.device());
  auto proposal = c.x - step * beta * c.g + std::sqrt(2.0 * step) * noise;
  auto inside = proposal.ge(o.low()).logical_and(proposal.le(o.high())).flatten(1).all(1);
  // Outside the box the target is 0: evaluate the net only on a copy clamped into it.
  auto at = energy_and_grad(model, proposal.clamp(o.low(), o.high()).to(torch::kFloat32), condition,
                            o.batch());
  auto log_ratio = -beta * (at.e - c.e) + log_proposal(c.x, proposal, at.g, beta, step) -
                   log_proposal(proposal, c.x, c.g, beta, step);
  auto u = torch::rand({c.x.size(0)}, gen, torch::kFloat64).to(c.x.device());
  auto accept = inside.logical_and(u.log().lt(log_ratio));
  auto a = accept.view({-1, 1}).expand({c.x.size(0), c.x[0].numel()}).reshape(c.x.sizes());
  c.x = torch::where(a, proposal, c.x);
  c.g = torch::where(a, at.g.reshape(c.x.sizes()), c.g);
  c.e = torch::where(accept, at.e, c.e);
  return accept.to(torch::kFloat64).mean().item<double>();
}

}  // namespace

AisResult ais_log_partition(EnergyModel& model, const std::vector<int64_t>& sample_shape,
                            const torch::Tensor& condition, const AisOptions& o, at::Generator& gen,
                            torch::Device device) {
  o.validate();
  std::vector<int64_t> shape{o.chains()};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  int64_t dim = 1;
  for (const int64_t s : sample_shape) dim *= s;
  const auto cond = condition.defined() ? condition.to(device) : condition;
  Chains c;
  c.x = (o.low() + (o.high() - o.low()) * torch::rand(shape, gen, torch::kFloat64)).to(device);
  auto eg = energy_and_grad(model, c.x.to(torch::kFloat32), cond, o.batch());
  c.e = eg.e;
  c.g = eg.g.reshape(c.x.sizes());
  auto log_w =
      torch::zeros({o.chains()}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  double step = o.step_size(), acceptance = 0, prev_beta = 0;
  const int64_t k_max = o.temperatures();
  for (int64_t k = 1; k <= k_max; ++k) {
    const double beta = std::pow(static_cast<double>(k) / static_cast<double>(k_max), o.power());
    log_w -= (beta - prev_beta) * c.e;
    prev_beta = beta;
    for (int64_t m = 0; m < o.mala_steps(); ++m) {
      const double acc = mala_step(model, c, cond, beta, step, o, gen);
      acceptance += acc / static_cast<double>(k_max * o.mala_steps());
      if (o.adapt_step()) step *= std::exp(acc - o.target_acceptance());
    }
  }
  AisResult r;
  r.chains = o.chains();
  r.log_z_base = static_cast<double>(dim) * std::log(o.high() - o.low());
  const double max_w = log_w.max().item<double>();
  auto w = (log_w - max_w).exp();
  const double mean_w = w.mean().item<double>();
  r.log_z = r.log_z_base + max_w + std::log(mean_w);
  r.std_error = w.std().item<double>() / (std::sqrt(static_cast<double>(o.chains())) * mean_w);
  r.effective_chains = std::pow(w.sum().item<double>(), 2) / w.pow(2).sum().item<double>();
  r.acceptance = acceptance;
  r.final_step_size = step;
  return r;
}

}  // namespace ebm::eval
