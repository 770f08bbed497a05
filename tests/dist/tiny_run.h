// What the data-parallel worker (dist_worker.cc) and the tests that check it agree on: a small
// spectrally normalised MLP energy, its trainer options (EMA on, so every kind of replicated state
// is exercised) and the fixed global data set whose batches the ranks split.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "ebm/core/spectral_norm.h"
#include "ebm/core/trainer.h"

namespace ebm::testing {

class TinyEnergy : public EnergyModel {
 public:
  explicit TinyEnergy(int64_t dim = 4, int64_t hidden = 32) {
    l1_ = register_module("l1", SNLinear(dim, hidden));
    l2_ = register_module("l2", SNLinear(hidden, 1));
  }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    return l2_(torch::silu(l1_(x))).squeeze(1);
  }

 private:
  SNLinear l1_{nullptr}, l2_{nullptr};
};

inline constexpr int64_t kTinyDim = 4;
inline constexpr uint64_t kTinySeed = 7;

inline TrainerOptions TinyTrainerOptions() {
  return TrainerOptions()
      .dequantize(false)
      .ema_decay(0.9)
      .adam(AdamOptions().lr(1e-3))
      .langevin(LangevinOptions()
                    .steps(5)
                    .step_size(0.1)
                    .noise_std(0.01)
                    .clamp_min(std::nullopt)
                    .clamp_max(std::nullopt))
      .buffer(ReplayBufferOptions().capacity(256).init(BufferInit::kGaussian));
}

// Batch k of rank r when `world` ranks take `batch` rows each: rows [(k world + r) batch, ...) of a
// fixed set of 4096 points of two Gaussians.
inline torch::Tensor TinyBatch(int64_t k, int rank, int world, int64_t batch) {
  static const torch::Tensor kData = [] {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    auto x = torch::randn({4096, kTinyDim}, gen) * 0.3;
    x.narrow(0, 0, 2048).add_(1.0);
    return x.index_select(0, torch::randperm(4096, gen));
  }();
  const int64_t start = ((k * world + rank) * batch) % (4096 - batch);
  return kData.narrow(0, start, batch);
}

}  // namespace ebm::testing
