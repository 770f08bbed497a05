// Image energy nets: shapes, conditioning, classification by energy, presets, bad input.
#include "ebm/nets/image_nets.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "ebm/core/langevin.h"

TEST(ImageNets, UnconditionalEnergyPerSample) {
  torch::manual_seed(0);
  ebm::ImageEnergyNet net(ebm::image_net_preset("small_cnn", 1, 0));
  auto x = torch::rand({5, 1, 28, 28});
  auto e = net.energy(x);
  ASSERT_EQ(e.sizes(), torch::IntArrayRef({5}));
  // Per-sample: the energy of row 2 does not depend on the other rows (eval mode).
  net.eval();
  auto e_all = net.energy(x);
  auto e_one = net.energy(x.slice(0, 2, 3));
  EXPECT_NEAR(e_all[2].item<float>(), e_one[0].item<float>(), 1e-5);
}

TEST(ImageNets, ConditionalLabelsEqualOneHotAndChangeTheEnergy) {
  torch::manual_seed(1);
  ebm::ImageEnergyNet net(ebm::image_net_preset("small_cnn", 1, 10));
  net.eval();
  // Give the class parameters some values so labels matter.
  for (auto& p : net.named_parameters()) {
    if (p.key().find("cond_") != std::string::npos) {
      torch::NoGradGuard g;
      p.value().add_(torch::randn_like(p.value()) * 0.5);
    }
  }
  auto x = torch::rand({4, 1, 28, 28});
  auto labels = torch::tensor({0, 3, 3, 9}, torch::kLong);
  auto e1 = net.energy(x, labels);
  auto e2 = net.energy(x, torch::one_hot(labels, 10).to(torch::kFloat32));
  EXPECT_TRUE(torch::allclose(e1, e2, 1e-5, 1e-5));
  auto e3 = net.energy(x, torch::tensor({1, 3, 3, 9}, torch::kLong));
  EXPECT_NE(e1[0].item<float>(), e3[0].item<float>());
  EXPECT_EQ(e1[1].item<float>(), e3[1].item<float>());
  EXPECT_THROW(net.energy(x, torch::tensor({0, 1, 2, 10}, torch::kLong)), std::invalid_argument);
  EXPECT_THROW(net.energy(x), std::invalid_argument);

  // Classification by energy equals an explicit loop over labels.
  torch::Tensor logits;
  auto pred = ebm::classify_by_energy(net, x, 10, &logits);
  for (int64_t i = 0; i < 4; ++i) {
    float best = 1e30f;
    int64_t arg = -1;
    for (int64_t y = 0; y < 10; ++y) {
      float e = net.energy(x.slice(0, i, i + 1), torch::tensor({y}, torch::kLong)).item<float>();
      EXPECT_NEAR(-logits[i][y].item<float>(), e, 1e-4 * (1 + std::abs(e)));
      if (e < best) best = e, arg = y;
    }
    EXPECT_EQ(pred[i].item<int64_t>(), arg);
  }
}

TEST(ImageNets, PresetsBuildAndRejectUnknownNames) {
  for (const char* name : {"resnet32", "resnet32_large", "resnet32_wider"}) {
    ebm::ImageEnergyNet net(ebm::image_net_preset(name, 3, 10));
    net.eval();
    auto e = net.energy(torch::rand({2, 3, 32, 32}), torch::tensor({1, 2}, torch::kLong));
    EXPECT_EQ(e.size(0), 2) << name;
  }
  EXPECT_THROW(ebm::image_net_preset("resnet9000", 3, 0), std::invalid_argument);
  ebm::ImageEnergyNet net(ebm::image_net_preset("small_cnn", 1, 0));
  EXPECT_THROW(net.energy(torch::rand({2, 3, 28, 28})), std::invalid_argument);
}

TEST(ImageNets, LangevinRunsOnTheNetAndKeepsTheBox) {
  torch::manual_seed(2);
  ebm::ImageEnergyNet net(ebm::image_net_preset("small_cnn", 1, 0));
  net.eval();
  auto x0 = torch::rand({3, 1, 28, 28});
  auto x = ebm::LangevinSampler(ebm::LangevinOptions().steps(5)).sample(net, x0);
  EXPECT_EQ(x.sizes(), x0.sizes());
  EXPECT_GE(x.min().item<float>(), 0.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
  EXPECT_FALSE(torch::equal(x, x0));
}

TEST(ImageNets, ClassHeadIsTheJemParametrisation) {
  torch::manual_seed(3);
  auto options = ebm::image_net_preset("small_cnn", 1, 4).class_head(true);
  ebm::ImageEnergyNet net(options);
  net.eval();
  auto x = torch::rand({3, 1, 28, 28});
  const auto per_class = ebm::class_energies(net, x, 4);  // [3, 4], one label at a time
  // The marginal without a label is -log sum_y exp(-E(x, y)).
  EXPECT_TRUE(torch::allclose(net.energy(x), -torch::logsumexp(-per_class, 1), 1e-5, 1e-5));
  // A soft label mixes the per-class energies linearly (the head's outputs, weighted).
  const auto soft =
      torch::tensor({{0.5, 0.5, 0.0, 0.0}, {0.0, 0.0, 1.0, 0.0}, {0.25, 0.25, 0.25, 0.25}});
  EXPECT_TRUE(torch::allclose(net.energy(x, soft), (per_class * soft).sum(1), 1e-5, 1e-5));
  // The blocks carry no label parameters: the class only picks the head's output.
  for (const auto& p : net.named_parameters())
    EXPECT_EQ(p.key().find("cond_"), std::string::npos) << p.key();
  EXPECT_THROW(ebm::ImageEnergyNet(ebm::image_net_preset("small_cnn", 1, 0).class_head(true)),
               std::invalid_argument);
}
