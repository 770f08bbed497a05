#include "ebm/core/icd.h"

#include <torch/nn/functional/padding.h>
#include <torch/torch.h>

#include <limits>
#include <stdexcept>
#include <tuple>

namespace ebm {

namespace {

// Half the mean log squared distance from each row of `flat` [N, D] to its nearest other row.
torch::Tensor nearest_neighbour_log_distance(const torch::Tensor& flat) {
  auto sq = flat.pow(2).sum(1);
  auto d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * flat.matmul(flat.t())).clamp_min(1e-12);
  auto self =
      torch::eye(flat.size(0), torch::TensorOptions().dtype(torch::kBool).device(flat.device()));
  auto nearest = std::get<0>(d2.masked_fill(self, std::numeric_limits<float>::max()).min(1));
  return 0.5 * nearest.log().mean();
}

}  // namespace

torch::Tensor icd_kl_term(EnergyModel& model, const torch::Tensor& x_in,
                          const torch::Tensor& condition, const LangevinOptions& langevin,
                          double entropy_weight) {
  // One more Langevin step from the chains' ends, kept in the graph.
  auto x = x_in.detach().to(torch::kFloat32).requires_grad_(true);
  auto grad = torch::autograd::grad({model.energy(x, condition).sum()}, {x}, {},
                                    /*retain_graph=*/true, /*create_graph=*/true)[0];
  auto moved = x - langevin.step_size() * grad;
  if (langevin.clamp_min() || langevin.clamp_max())
    moved = moved.clamp(langevin.clamp_min(), langevin.clamp_max());
  // E(x') with the parameters held: the value, and the gradient g . dx'/dtheta alone.
  auto leaf = moved.detach().requires_grad_(true);
  auto e_moved = model.energy(leaf, condition).to(torch::kFloat32);
  auto g = torch::autograd::grad({e_moved.sum()}, {leaf})[0].detach();
  auto term = e_moved.detach().mean() + (g * (moved - moved.detach())).flatten(1).sum(1).mean();
  if (entropy_weight == 0 || moved.size(0) < 2) return term;
  return term - entropy_weight * nearest_neighbour_log_distance(moved.flatten(1));
}

torch::Tensor augment_chain_starts(const torch::Tensor& x, double prob, int64_t shift, bool flip) {
  if (x.dim() != 4)
    throw std::invalid_argument("augment_chain_starts: images [N, C, H, W] expected, got " +
                                c10::str(x.sizes()));
  auto out = x.clone();
  auto chosen = (torch::rand({x.size(0)}) < prob).nonzero().flatten();
  const int64_t n = chosen.numel(), h = x.size(2), w = x.size(3);
  if (n == 0) return out;
  const auto offsets = torch::randint(0, 2 * shift + 1, {n, 2}, torch::kLong);
  const auto mirror = torch::rand({n}) < 0.5;
  namespace F = torch::nn::functional;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = chosen[k].item<int64_t>();
    auto img = x[i];
    if (shift > 0) {
      img = F::pad(img.unsqueeze(0),
                   F::PadFuncOptions({shift, shift, shift, shift}).mode(torch::kReplicate))
                .squeeze(0)
                .narrow(1, offsets[k][0].item<int64_t>(), h)
                .narrow(2, offsets[k][1].item<int64_t>(), w);
    }
    if (flip && mirror[k].item<bool>()) img = img.flip({2});
    out[i].copy_(img);
  }
  return out;
}

}  // namespace ebm
