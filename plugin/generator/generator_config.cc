// GeneratorConfig::FromModel: the attributes alone, free of LibTorch, so that the fuzz targets
// (fuzz/) can run the parser without the model.
#include <climits>
#include <optional>
#include <sstream>

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
  return c;
}

}  // namespace ebm::generator
