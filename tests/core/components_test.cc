// Replay buffer, spectral norm and Adam against independent computations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "ebm/core/adam.h"
#include "ebm/core/replay_buffer.h"
#include "ebm/core/spectral_norm.h"

TEST(ReplayBuffer, FreshUntilMoreThanABatchThenReinitAtTheConfiguredRate) {
  torch::manual_seed(0);
  ebm::ReplayBuffer buf({3}, ebm::ReplayBufferOptions().capacity(1000).reinit_prob(0.2));
  auto d0 = buf.draw(100, torch::kCPU);
  EXPECT_FALSE(d0.from_buffer.any().item<bool>());
  buf.push(torch::full({100, 3}, 7.0));  // size 100: not more than a batch of 100
  EXPECT_FALSE(buf.draw(100, torch::kCPU).from_buffer.any().item<bool>());
  buf.push(torch::full({100, 3}, 7.0));
  int64_t from_buffer = 0;
  const int64_t rounds = 200, n = 100;
  for (int i = 0; i < rounds; ++i) {
    auto d = buf.draw(n, torch::kCPU);
    from_buffer += d.from_buffer.sum().item<int64_t>();
    // Buffer rows hold the stored states, fresh rows the uniform init.
    EXPECT_TRUE((d.x.index({d.from_buffer}) == 7.0).all().item<bool>());
    auto fresh = d.x.index({d.from_buffer.logical_not()});
    if (fresh.numel()) {
      EXPECT_LT(fresh.max().item<float>(), 1.0f);
    }
  }
  const double p = 1.0 - static_cast<double>(from_buffer) / (rounds * n);
  EXPECT_NEAR(p, 0.2, 4 * std::sqrt(0.2 * 0.8 / (rounds * n)));
}

TEST(ReplayBuffer, FifoKeepsTheNewest) {
  ebm::ReplayBuffer buf({1}, ebm::ReplayBufferOptions().capacity(5));
  buf.push(torch::arange(8, torch::kFloat32).unsqueeze(1));
  EXPECT_EQ(buf.size(), 5);
  auto kept = std::get<0>(buf.states().squeeze(1).sort());
  EXPECT_TRUE(torch::equal(kept, torch::arange(3, 8, torch::kFloat32)));
}

TEST(ReplayBuffer, ReservoirIsAUniformSampleOfTheStream) {
  // Each of 100 streamed items survives in a reservoir of 10 with probability 0.1.
  torch::manual_seed(1);
  auto hits = torch::zeros({100}, torch::kDouble);
  const int trials = 400;
  for (int t = 0; t < trials; ++t) {
    ebm::ReplayBuffer buf(
        {1}, ebm::ReplayBufferOptions().capacity(10).policy(ebm::BufferPolicy::kReservoir));
    for (int i = 0; i < 100; i += 20) {
      buf.push(torch::arange(i, i + 20, torch::kFloat32).unsqueeze(1));
    }
    hits.index_add_(0, buf.states().squeeze(1).to(torch::kLong), torch::ones({10}, torch::kDouble));
  }
  auto freq = hits / trials;
  // Early and late halves are equally represented (a FIFO would keep only the last 10).
  EXPECT_NEAR(freq.slice(0, 0, 50).mean().item<double>(), 0.1, 0.015);
  EXPECT_NEAR(freq.slice(0, 50, 100).mean().item<double>(), 0.1, 0.015);
}

TEST(ReplayBuffer, Uint8StorageQuantisesTo256BinsAndDequantisesWithinTheBin) {
  torch::manual_seed(2);
  ebm::ReplayBuffer buf({2, 2}, ebm::ReplayBufferOptions().capacity(50).reinit_prob(0).storage(
                                    ebm::BufferStorage::kUint8));
  auto x = torch::rand({50, 2, 2});
  buf.push(x);
  auto centres = buf.states();
  EXPECT_TRUE(torch::equal(centres, ((x * 256).floor() + 0.5) / 256));
  auto d = buf.draw(10, torch::kCPU);
  ASSERT_TRUE(d.from_buffer.all().item<bool>());
  auto bins = (d.x * 256).floor();
  auto frac = d.x * 256 - bins;
  EXPECT_TRUE(((frac >= 0) & (frac < 1)).all().item<bool>());
}

TEST(ReplayBuffer, SaveLoadRoundTripAndShapeErrors) {
  ebm::ReplayBuffer a({3}, ebm::ReplayBufferOptions().capacity(8));
  a.push(torch::randn({6, 3}), torch::arange(6));
  torch::serialize::OutputArchive out;
  a.save(out, "b.");
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  ebm::ReplayBuffer b({3}, ebm::ReplayBufferOptions().capacity(8));
  b.load(in, "b.");
  EXPECT_EQ(b.size(), 6);
  EXPECT_TRUE(torch::equal(a.states(), b.states()));
  EXPECT_THROW(b.push(torch::zeros({2, 4})), std::invalid_argument);
  ebm::ReplayBuffer c({3}, ebm::ReplayBufferOptions().capacity(9));
  torch::serialize::InputArchive in2;
  std::istringstream read2(bytes.str());
  in2.load_from(read2);
  EXPECT_THROW(c.load(in2, "b."), std::runtime_error);
}

TEST(SpectralNorm, EstimateWithinOnePercentOfTheLargestSingularValue) {
  torch::manual_seed(3);
  ebm::SNLinear lin(40, 30);
  lin->train();
  auto x = torch::randn({4, 40});
  for (int i = 0; i < 50; ++i) lin->forward(x);
  auto sv = torch::linalg_svdvals(lin->weight.detach())[0].item<double>();
  EXPECT_NEAR(lin->sigma().item<double>() / sv, 1.0, 0.01);
  // The normalised weight has spectral norm 1: y = W x / sigma.
  auto y = lin->forward(x);
  auto expected = torch::linear(x, lin->weight / lin->sigma(), lin->bias);
  EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-5));

  ebm::SNConv2d conv(torch::nn::Conv2dOptions(3, 8, 3).padding(1));
  conv->train();
  auto img = torch::randn({2, 3, 8, 8});
  for (int i = 0; i < 50; ++i) conv->forward(img);
  auto wm = conv->weight.detach().reshape({8, -1});
  EXPECT_NEAR(conv->sigma().item<double>() / torch::linalg_svdvals(wm)[0].item<double>(), 1.0,
              0.01);
}

TEST(SpectralNorm, FreshModuleIsAlreadyNormalisedInEvalMode) {
  torch::manual_seed(5);
  ebm::SNLinear lin(64, 64);
  lin->eval();
  auto sv = torch::linalg_svdvals(lin->weight.detach())[0].item<double>();
  // 15 power iterations at construction: close to (and never above) the top singular value, even
  // for a random square matrix whose top singular values are close together.
  const double ratio = lin->sigma().item<double>() / sv;
  EXPECT_GT(ratio, 0.85);
  EXPECT_LE(ratio, 1.0 + 1e-6);
}

TEST(SpectralNorm, EvalModeDoesNotUpdateTheVectors) {
  torch::manual_seed(6);
  ebm::SNLinear lin(5, 4);
  {
    // New weights: u, v (converged for the old ones at construction) are no longer converged,
    // so a training-mode power iteration must move u.
    torch::NoGradGuard g;
    lin->weight.copy_(torch::randn({4, 5}));
  }
  lin->eval();
  auto u0 = lin->named_buffers()["sn_u"].clone();
  auto y_eval = lin->forward(torch::ones({1, 5}));
  EXPECT_TRUE(torch::equal(u0, lin->named_buffers()["sn_u"]));
  // Eval mode used the new weights (the cached W / sigma was invalidated by the copy).
  auto expected = torch::linear(torch::ones({1, 5}), lin->weight / lin->sigma(), lin->bias);
  EXPECT_TRUE(torch::allclose(y_eval, expected, 1e-5, 1e-5));
  lin->train();
  lin->forward(torch::randn({2, 5}));
  EXPECT_FALSE(torch::equal(u0, lin->named_buffers()["sn_u"]));
}

TEST(Adam, WithoutClipMatchesLibTorchAdam) {
  torch::manual_seed(4);
  auto a = torch::randn({5, 3}).requires_grad_(true);
  auto b = a.detach().clone().requires_grad_(true);
  ebm::Adam ours({a}, ebm::AdamOptions().lr(0.01).beta1(0.9).beta2(0.99).clip_grad(false));
  torch::optim::Adam ref({b}, torch::optim::AdamOptions(0.01).betas({0.9, 0.99}).eps(1e-8));
  for (int i = 0; i < 20; ++i) {
    auto target = torch::randn({5, 3});
    ours.zero_grad();
    (a - target).pow(2).sum().backward();
    ours.step(0.01);
    ref.zero_grad();
    (b - target).pow(2).sum().backward();
    ref.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-6));
}

TEST(Adam, ClipBoundsEachGradientElement) {
  // First step: v_hat is 0, so every element is clipped to +-0.1 before the moments; with
  // beta1 = 0 the update is lr * g / (|g| + eps) = lr * sign(g) for |g| >> eps.
  auto p = torch::zeros({3}).requires_grad_(true);
  ebm::Adam adam({p}, ebm::AdamOptions().lr(1.0).clip_grad(true));
  p.mutable_grad() = torch::tensor({1000.0f, -0.05f, 0.0f});
  adam.step(1.0);
  EXPECT_NEAR(p[0].item<float>(), -1.0f, 1e-5);
  EXPECT_NEAR(p[1].item<float>(), 1.0f, 1e-5);
  EXPECT_EQ(p[2].item<float>(), 0.0f);
}
