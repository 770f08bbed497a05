// LibTorch works in this build: tensor arithmetic against hand loops, autograd against the
// analytic derivative and against finite differences.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

TEST(TorchSmoke, MatmulMatchesHandLoop) {
  torch::manual_seed(1);
  auto a = torch::randn({5, 7}, torch::kFloat64);
  auto b = torch::randn({7, 3}, torch::kFloat64);
  auto c = torch::matmul(a, b);
  auto a_acc = a.accessor<double, 2>();
  auto b_acc = b.accessor<double, 2>();
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (int k = 0; k < 7; ++k) s += a_acc[i][k] * b_acc[k][j];
      EXPECT_NEAR(c[i][j].item<double>(), s, 1e-12);
    }
  }
}

TEST(TorchSmoke, AutogradMatchesAnalyticAndFiniteDifferences) {
  auto x = torch::tensor({0.3, -1.2, 2.0}, torch::kFloat64).requires_grad_(true);
  auto f = [](const torch::Tensor& v) { return (v.pow(3) + torch::sin(v)).sum(); };
  auto g = torch::autograd::grad({f(x)}, {x})[0];
  auto expected = 3 * x.detach().pow(2) + torch::cos(x.detach());
  EXPECT_TRUE(torch::allclose(g, expected, 1e-12, 1e-12));
  const double h = 1e-6;
  for (int i = 0; i < 3; ++i) {
    auto xp = x.detach().clone(), xm = x.detach().clone();
    xp[i] += h;
    xm[i] -= h;
    double fd = (f(xp).item<double>() - f(xm).item<double>()) / (2 * h);
    EXPECT_NEAR(g[i].item<double>(), fd, 1e-6);
  }
}

TEST(TorchSmoke, StdFilesystemBindsToLibstdcxxNotToLibTorchsCopy) {
  // libtorch.so exports a copy of std::filesystem whose remove_all crashes when our calls bind to
  // it; cmake/EbmTorch.cmake puts libstdc++ first in the search order. This would segfault.
  const auto dir =
      std::filesystem::temp_directory_path() / ("ebm_fs_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "a" / "b");
  std::ofstream(dir / "a" / "b" / "f.txt") << "x";
  EXPECT_EQ(std::filesystem::remove_all(dir), 4u);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(TorchSmoke, CudaAvailabilityIsConsistent) {
  // On a machine without a GPU this is false; with one, a tensor must round-trip through it.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto x = torch::arange(10, torch::kFloat32);
  EXPECT_TRUE(torch::equal(x.cuda().mul(2).cpu(), x * 2));
}
