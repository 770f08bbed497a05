// Uses the installed core: the Langevin sampler on a custom energy, a Gaussian E(x) = |x - mu|^2
// / (2 sigma^2) in 4-D. The core's step adds the noise first, then the gradient step (the IGEBM
// order): x <- (x + sqrt(2 eps) z) - eps grad E, whose stationary law is N(mu, v) with
// v = (1 - a)^2 2 eps / (1 - (1 - a)^2), a = eps / sigma^2 (std 0.485 here for sigma 0.5). The
// samples' mean must be within 0.05 of mu and their standard deviation within 0.02 of sqrt(v);
// it prints both and exits 1 otherwise.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"

namespace {

class Gaussian : public ebm::EnergyModel {
 public:
  Gaussian(torch::Tensor mu, double sigma) : mu_(std::move(mu)), sigma_(sigma) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return (x - mu_).pow(2).sum(1) / (2 * sigma_ * sigma_);
  }

 private:
  torch::Tensor mu_;
  double sigma_;
};

}  // namespace

int main() {
  torch::manual_seed(0);
  torch::set_num_threads(1);
  const double sigma = 0.5, eps = 0.01;
  const auto mu = torch::tensor({1.0F, -2.0F, 0.5F, 3.0F});
  Gaussian energy(mu, sigma);
  // x <- x - eps * grad E + sqrt(2 eps) * N(0, 1): stationary at exp(-E) for small eps.
  const auto options = ebm::LangevinOptions()
                           .steps(2000)
                           .step_size(eps)
                           .noise_std(std::sqrt(2 * eps))
                           .clip_mode(ebm::GradClip::kNone)
                           .clamp_min(std::nullopt)
                           .clamp_max(std::nullopt);
  const auto x = ebm::LangevinSampler(options).sample(energy, torch::zeros({4000, 4}));
  const double mean_err = (x.mean(0) - mu).abs().max().item<double>();
  const double a = eps / (sigma * sigma);
  const double stationary_std = (1 - a) * std::sqrt(2 * eps / (1 - (1 - a) * (1 - a)));
  const double std_err = (x.std(0) - stationary_std).abs().max().item<double>();
  std::printf(
      "ebm::core from an install: Langevin samples of E = |x - mu|^2 / (2 * %.2f^2) in 4-D: "
      "max |mean - mu| = %.4f, max |std - %.4f| = %.4f\n",
      sigma, mean_err, stationary_std, std_err);
  const bool ok = mean_err < 0.05 && std_err < 0.02;
  std::printf("%s\n", ok ? "OK" : "FAILED: the moments are off");
  return ok ? 0 : 1;
}
