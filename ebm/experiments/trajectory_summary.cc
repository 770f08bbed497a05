// The statistics behind the verdicts: 95% bootstrap intervals over evaluation units (held-out
// states, goals) of every method's metrics, and paired differences of the EBM against each
// baseline, in numbers and in words.
#include <fmt/core.h>

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ebm/experiments/trajectory_internal.h"

namespace ebm::experiments::traj {

namespace {

// Metrics a method should match the truth on rather than minimise: compared by their per-unit gap
// to the ground truth's value.
bool matched_to_truth(const std::string& metric) {
  return metric == "diversity" || metric == "movement";
}

std::vector<double> gap_to_truth(const std::vector<double>& v, const std::vector<double>& truth) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::abs(v[i] - truth[i]);
  return out;
}

std::string verdict(const std::string& method, const std::string& baseline,
                    const std::string& metric, const eval::Interval& d) {
  const std::string numbers = eval::format_interval(d, 4);
  if (d.below(0)) {
    return fmt::format("{} wins on {}: lower than {} (difference {})", method, metric, baseline,
                       numbers);
  }
  if (d.above(0)) {
    return fmt::format("{} wins on {}: lower than {} (difference {})", baseline, metric, method,
                       numbers);
  }
  return fmt::format("no resolved difference on {} between {} and {} (difference {})", metric,
                     method, baseline, numbers);
}

util::Json interval_json(const eval::Interval& i) {
  return util::Json::object().set("mean", i.mean).set("lo", i.lo).set("hi", i.hi).compact();
}

}  // namespace

Summary summarize(const UnitValues& values, const std::string& method,
                  const std::vector<std::string>& baselines, const eval::BootstrapOptions& o) {
  Summary s;
  for (const auto& [m, metrics] : values) {
    for (const auto& [k, v] : metrics) s.intervals[m][k] = eval::bootstrap_mean(v, o);
  }
  if (!values.count(method)) return s;
  const auto& mine = values.at(method);
  const auto truth = values.find("ground_truth");
  for (const auto& baseline : baselines) {
    if (!values.count(baseline)) continue;
    Comparison cmp{method, baseline, {}, {}};
    for (const auto& [k, v] : mine) {
      const auto other = values.at(baseline).find(k);
      if (other == values.at(baseline).end() || other->second.size() != v.size()) continue;
      std::string name = k;
      std::vector<double> a = v, b = other->second;
      if (matched_to_truth(k)) {
        if (truth == values.end() || !truth->second.count(k)) continue;
        name = k + "_gap_to_truth";
        a = gap_to_truth(v, truth->second.at(k));
        b = gap_to_truth(other->second, truth->second.at(k));
      }
      cmp.differences[name] = eval::bootstrap_paired_difference(a, b, o);
      cmp.verdicts.push_back(verdict(method, baseline, name, cmp.differences[name]));
    }
    s.comparisons.push_back(std::move(cmp));
  }
  return s;
}

util::Json summary_json(const Summary& s) {
  auto intervals = util::Json::object();
  for (const auto& [m, metrics] : s.intervals) {
    auto one = util::Json::object().compact();
    for (const auto& [k, i] : metrics) one.set(k, std::vector<double>{i.lo, i.hi});
    intervals.set(m, std::move(one));
  }
  auto paired = util::Json::object();
  auto verdicts = util::Json::array();
  for (const auto& cmp : s.comparisons) {
    auto one = util::Json::object();
    for (const auto& [k, d] : cmp.differences) one.set(k, interval_json(d));
    paired.set(cmp.method + " - " + cmp.baseline, std::move(one));
    for (const auto& v : cmp.verdicts) verdicts.push(v);
  }
  return util::Json::object()
      .set("intervals", std::move(intervals))
      .set("paired_differences", std::move(paired))
      .set("verdicts", std::move(verdicts));
}

}  // namespace ebm::experiments::traj
