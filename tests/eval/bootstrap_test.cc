// Bootstrap intervals against what the normal distribution says they must be: their coverage of a
// known mean over many repetitions, their width against the normal interval 2 x 1.96 sigma /
// sqrt(n), and the narrowing a pairing of units buys.
#include "ebm/eval/bootstrap.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

using ebm::eval::bootstrap_mean;
using ebm::eval::bootstrap_paired_difference;
using ebm::eval::BootstrapOptions;

namespace {

std::vector<double> Normal(std::mt19937_64& rng, size_t n, double mean, double sd) {
  std::normal_distribution<double> d(mean, sd);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

TEST(Bootstrap, CoversTheTrueMeanAtItsLevel) {
  std::mt19937_64 rng(7);
  const int repeats = 300;
  const size_t n = 48;
  int covered = 0;
  double width = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto v = Normal(rng, n, 1.0, 2.0);
    BootstrapOptions o;
    o.resamples = 1000;
    o.seed = static_cast<uint64_t>(r);
    const auto i = bootstrap_mean(v, o);
    covered += i.lo <= 1.0 && 1.0 <= i.hi;
    width += (i.hi - i.lo) / repeats;
  }
  // 95% nominal; the percentile bootstrap runs a little narrow at n = 48. Binomial sd over 300
  // repeats: 1.3 points.
  EXPECT_GE(covered, static_cast<int>(0.89 * repeats));
  EXPECT_LE(covered, static_cast<int>(0.99 * repeats));
  const double normal_width = 2 * 1.96 * 2.0 / std::sqrt(static_cast<double>(n));
  EXPECT_NEAR(width / normal_width, 1.0, 0.08);
}

TEST(Bootstrap, PairingRemovesSharedDifficulty) {
  std::mt19937_64 rng(3);
  // Units differ a lot (sd 5); method a is worse than b by 0.3 +- 0.2 on every unit.
  const auto difficulty = Normal(rng, 48, 10.0, 5.0), extra = Normal(rng, 48, 0.3, 0.2);
  std::vector<double> a(48), b(48);
  for (size_t i = 0; i < 48; ++i) {
    b[i] = difficulty[i];
    a[i] = difficulty[i] + extra[i];
  }
  const auto d = bootstrap_paired_difference(a, b);
  EXPECT_TRUE(d.above(0.0)) << d.lo;
  EXPECT_NEAR(d.mean, 0.3, 0.1);
  // Unpaired, the same difference is hidden by the units' spread.
  const auto ia = bootstrap_mean(a), ib = bootstrap_mean(b);
  EXPECT_LT(ia.lo, ib.hi);
  EXPECT_LT(d.hi - d.lo, 0.1 * (ia.hi - ia.lo));
}

TEST(Bootstrap, SeededExactAndChecked) {
  const std::vector<double> v = {1, 2, 3, 4, 10};
  const auto a = bootstrap_mean(v), b = bootstrap_mean(v);
  EXPECT_DOUBLE_EQ(a.lo, b.lo);
  EXPECT_DOUBLE_EQ(a.hi, b.hi);
  EXPECT_DOUBLE_EQ(a.mean, 4.0);
  EXPECT_EQ(a.units, 5);
  EXPECT_GE(a.lo, 1.0);
  EXPECT_LE(a.hi, 10.0);
  const auto one = bootstrap_mean({2.5});
  EXPECT_DOUBLE_EQ(one.lo, 2.5);
  EXPECT_DOUBLE_EQ(one.hi, 2.5);
  EXPECT_THROW(bootstrap_mean({}), std::invalid_argument);
  EXPECT_THROW(bootstrap_mean({1.0, NAN}), std::invalid_argument);
  EXPECT_THROW(bootstrap_paired_difference({1.0}, {1.0, 2.0}), std::invalid_argument);
  EXPECT_EQ(ebm::eval::format_interval(one, 2), "2.50 [2.50, 2.50]");
}
