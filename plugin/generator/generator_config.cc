// GeneratorConfig::FromModel: the attributes alone, free of LibTorch, so that the fuzz targets
// (fuzz/) can run the parser without the model.
#include <climits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "plugin/common/plugin_util.h"
#include "plugin/generator/generator.h"

namespace ebm::generator {

std::optional<GeneratorConfig> GeneratorConfig::FromModel(const mjModel* m, int instance) {
  const plugin::Attributes attributes(m, instance, kPluginName);
  GeneratorConfig c;
  c.checkpoint = attributes.text(kAttrCheckpoint);
  if (c.checkpoint.empty()) {
    return attributes.fail(kAttrCheckpoint,
                           "missing; give models/generator.pt of `ebm traj train`");
  }
  const auto every = attributes.integer(kAttrEvery, 1, LONG_MAX, 0);
  const auto samples = every ? attributes.integer(kAttrSamples, 1, 1024, 8) : std::nullopt;
  const auto horizon = samples ? attributes.integer(kAttrHorizon, 1, 100000, 0) : std::nullopt;
  const auto steps = horizon ? attributes.integer(kAttrSteps, 0, INT_MAX, 0) : std::nullopt;
  if (!steps) return std::nullopt;
  c.every = *every;
  c.samples = static_cast<int>(*samples);
  c.horizon = static_cast<int>(*horizon);
  c.steps = static_cast<int>(*steps);
  std::istringstream names(attributes.text(kAttrSites));
  std::string name;
  while (names >> name) {
    const int id = mj_name2id(m, mjOBJ_SITE, name.c_str());
    if (id < 0) return attributes.fail(kAttrSites, "no site named '" + name + "'");
    c.sites.push_back(id);
  }
  const std::string goal_site = attributes.text(kAttrGoalSite);
  const std::string target = attributes.text(kAttrGoalTarget),
                    mocap = attributes.text(kAttrGoalMocap);
  if (goal_site.empty()) {
    if (!target.empty() || !mocap.empty())
      return attributes.fail(kAttrGoalSite, "missing; goal_target and goal_mocap need a goal site");
    return c;
  }
  c.goal_site = mj_name2id(m, mjOBJ_SITE, goal_site.c_str());
  if (c.goal_site < 0) return attributes.fail(kAttrGoalSite, "no site named '" + goal_site + "'");
  if (target.empty() == mocap.empty())
    return attributes.fail(kAttrGoalTarget, "give either goal_target or goal_mocap, not both");
  if (!target.empty()) {
    const auto xyz = attributes.numbers(kAttrGoalTarget, 3, -1e6, 1e6, {});
    if (!xyz) return std::nullopt;
    c.goal_target = *xyz;
  } else {
    const int body = mj_name2id(m, mjOBJ_BODY, mocap.c_str());
    if (body < 0) return attributes.fail(kAttrGoalMocap, "no body named '" + mocap + "'");
    c.goal_mocap = m->body_mocapid[body];
    if (c.goal_mocap < 0)
      return attributes.fail(kAttrGoalMocap, "body '" + mocap + "' is not a mocap body");
  }
  // Below 2 the goal's explicit Langevin steps are stable at step size 1 (GoalEnergy).
  const auto weight = attributes.numbers(kAttrGoalWeight, 1, 0, 1.999, {1.0});
  if (!weight) return std::nullopt;
  c.goal_weight = (*weight)[0];
  return c;
}

}  // namespace ebm::generator
