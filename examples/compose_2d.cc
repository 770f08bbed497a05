// The blog's composition in two dimensions: energy A (a ring) + energy B (a vertical band) is a
// product of experts whose samples lie where both are likely, on the two arcs where the band
// crosses the ring. The core's one Langevin sampler draws from A, from B and from A + B
// (WeightedSumEnergy), and the program writes one panel per energy: the energy as a heat map with
// the chains' end points in white.
//
//   build/bin/example_compose_2d [out.png]      (default compose_2d.png)
//
// It prints the share of A + B's samples that lie on both the ring and the band, and exits 1 when
// fewer than 90% do (so the test that runs it fails if composition breaks).
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"

namespace {

constexpr double kWidth = 0.1;  // both experts are Gaussian across their shape, std 0.1

// A: points at distance 1 from the origin.
class Ring : public ebm::EnergyModel {
 public:
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return (x.norm(2, 1) - 1.0).pow(2) / (2 * kWidth * kWidth);
  }
};

// B: points with x = 0.6.
class Band : public ebm::EnergyModel {
 public:
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return (x.select(1, 0) - 0.6).pow(2) / (2 * kWidth * kWidth);
  }
};

// One panel [3, H, W]: the energy over [-1.6, 1.6]^2 and the samples as white dots.
torch::Tensor panel(ebm::EnergyModel& model, const torch::Tensor& samples, int64_t size) {
  const auto axis = torch::linspace(-1.6, 1.6, size);
  const auto grid = torch::stack(torch::meshgrid({axis, axis.flip(0)}, "xy"), -1).reshape({-1, 2});
  torch::NoGradGuard no_grad;
  auto image = ebm::report::heat_map(model.energy(grid).clamp_max(50).reshape({size, size}));
  const auto px = ((samples + 1.6) / 3.2 * (size - 1)).round().to(torch::kLong).clamp(0, size - 1);
  for (int64_t i = 0; i < px.size(0); ++i) {
    image.select(2, px[i][0].item<int64_t>())
        .select(1, size - 1 - px[i][1].item<int64_t>())
        .fill_(1.0);
  }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "compose_2d.png";
  torch::manual_seed(0);
  auto ring = std::make_shared<Ring>();
  auto band = std::make_shared<Band>();
  auto both = std::make_shared<ebm::WeightedSumEnergy>();
  both->add(ring).add(band);  // E_A + E_B: the product of the two experts' densities

  // Small steps with noise: Langevin dynamics on these closed-form energies (no box, no clip).
  const ebm::LangevinSampler sampler(ebm::LangevinOptions()
                                         .steps(300)
                                         .step_size(0.002)
                                         .noise_std(0.02)
                                         .clip_mode(ebm::GradClip::kNone)
                                         .clamp_min(std::nullopt)
                                         .clamp_max(std::nullopt));
  std::vector<torch::Tensor> panels;
  double share_on_both = 0;
  for (const auto& [name, model] : std::vector<std::pair<std::string, ebm::EnergyModel*>>{
           {"A (ring)", ring.get()}, {"B (band)", band.get()}, {"A + B", both.get()}}) {
    const auto x = sampler.sample(*model, torch::rand({400, 2}) * 3.2 - 1.6);
    const auto ring_ok = (x.norm(2, 1) - 1.0).abs() < 3 * kWidth;
    const auto band_ok = (x.select(1, 0) - 0.6).abs() < 3 * kWidth;
    const double both_ok = (ring_ok & band_ok).to(torch::kFloat64).mean().item<double>();
    std::printf("%-9s samples on the ring %5.1f%%, on the band %5.1f%%, on both %5.1f%%\n",
                name.c_str(), 100 * ring_ok.to(torch::kFloat64).mean().item<double>(),
                100 * band_ok.to(torch::kFloat64).mean().item<double>(), 100 * both_ok);
    share_on_both = both_ok;  // the last panel is A + B
    panels.push_back(panel(*model, x, 200));
  }
  ebm::report::write_png_grid(out, torch::stack(panels), 3);
  std::printf("wrote %s\n", out.c_str());
  return share_on_both >= 0.9 ? 0 : 1;
}
