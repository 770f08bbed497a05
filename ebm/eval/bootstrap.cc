#include "ebm/eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace ebm::eval {

namespace {

void check_values(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("bootstrap: no values");
  for (double v : values) {
    if (!std::isfinite(v)) throw std::invalid_argument("bootstrap: a value is not finite");
  }
}

// The value at quantile q of sorted values, interpolating linearly between neighbours.
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(std::floor(pos));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (pos - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

}  // namespace

Interval bootstrap_mean(const std::vector<double>& values, const BootstrapOptions& options) {
  check_values(values);
  if (options.resamples < 1 || !(options.level > 0 && options.level < 1)) {
    throw std::invalid_argument("bootstrap: need resamples >= 1 and level in (0, 1)");
  }
  const size_t n = values.size();
  Interval out;
  out.units = static_cast<int64_t>(n);
  for (double v : values) out.mean += v / static_cast<double>(n);
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> means(static_cast<size_t>(options.resamples));
  for (auto& m : means) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += values[pick(rng)];
    m = sum / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  const double tail = (1 - options.level) / 2;
  out.lo = quantile(means, tail);
  out.hi = quantile(means, 1 - tail);
  return out;
}

Interval bootstrap_paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                     const BootstrapOptions& options) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("bootstrap: paired values differ in count (" +
                                std::to_string(a.size()) + " vs " + std::to_string(b.size()) + ")");
  }
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return bootstrap_mean(d, options);
}

std::string format_interval(const Interval& i, int digits) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%.*f [%.*f, %.*f]", digits, i.mean, digits, i.lo, digits, i.hi);
  return buf;
}

}  // namespace ebm::eval
