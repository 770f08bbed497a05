// Confidence intervals over evaluation units (held-out start states, goals): the percentile
// bootstrap of a mean, and of a paired difference (two methods measured on the same units), so
// that a verdict such as "the EBM beats the MDN" rests on an interval, not on one mean.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ebm::eval {

struct BootstrapOptions {
  int64_t resamples = 2000;  // bootstrap draws of the units, with replacement
  double level = 0.95;       // two-sided coverage of the interval
  uint64_t seed = 0;         // the draws are a function of the seed alone
};

// A mean over units and its interval [lo, hi].
struct Interval {
  double mean = 0, lo = 0, hi = 0;
  int64_t units = 0;
  // True when the interval lies entirely below / above `x` (e.g. 0 for a difference).
  bool below(double x) const { return hi < x; }
  bool above(double x) const { return lo > x; }
};

// Percentile bootstrap of the mean of `values` (one per unit). One value gives [v, v]; none, or a
// non-finite value, throws std::invalid_argument.
Interval bootstrap_mean(const std::vector<double>& values, const BootstrapOptions& options = {});

// The same for the paired differences a[i] - b[i] (the units resampled together, which removes the
// units' shared difficulty from the interval). Sizes must agree.
Interval bootstrap_paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                     const BootstrapOptions& options = {});

// "0.0123 [0.0101, 0.0150]" with `digits` significant decimals.
std::string format_interval(const Interval& i, int digits = 4);

}  // namespace ebm::eval
