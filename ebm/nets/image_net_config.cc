#include "ebm/nets/image_net_config.h"

#include <string>
#include <vector>

namespace ebm {

namespace {

// The documented maxima (configs/README.md): far beyond any net the paper trains, and small
// enough that a typo cannot ask for terabytes or hours of construction.
constexpr int64_t kMaxFilters = 4096;
constexpr int64_t kMaxStages = 8;
constexpr int64_t kMaxBlocksPerStage = 64;

}  // namespace

ImageEnergyOptions image_net_options(const ConfigSection& m, int64_t in_channels) {
  const auto net = m.choice(
      "net", "small_cnn",
      {"small_cnn", "resnet32", "resnet32_large", "resnet32_wider", "resnet32_wider_imagenet"});
  const bool conditional = m.get<bool>("conditional", false);
  const int64_t classes = m.get<int64_t>("num_classes", 10);
  m.check(!conditional || classes >= 2, "num_classes", ">= 2 for a conditional model");
  auto o = image_net_preset(net, in_channels, conditional ? classes : 0);
  o.activation(
      m.choice("activation", kActivationNames, o.activation()));  // the preset's by default
  o.spectral_norm(m.get<bool>("spectral_norm", o.spectral_norm()));
  o.class_head(m.get<bool>("class_head", o.class_head()));
  m.check(!o.class_head() || conditional, "class_head", "false for an unconditional model");
  o.dropout(m.get<double>("dropout", o.dropout()));
  m.check(o.dropout() >= 0 && o.dropout() < 1, "dropout", "in [0, 1)");
  const std::string filters = "in [1, " + std::to_string(kMaxFilters) + "]";
  o.stem_filters(m.get<int64_t>("stem_filters", o.stem_filters()));
  m.check(o.stem_filters() > 0 && o.stem_filters() <= kMaxFilters, "stem_filters", filters);
  o.stage_filters(m.get<std::vector<int64_t>>("stage_filters", o.stage_filters()));
  const auto& stages = o.stage_filters();
  m.check(!stages.empty() && static_cast<int64_t>(stages.size()) <= kMaxStages, "stage_filters",
          "a list of 1 to " + std::to_string(kMaxStages) + " filter counts");
  for (const int64_t f : stages)
    m.check(f > 0 && f <= kMaxFilters, "stage_filters", "each " + filters);
  o.blocks_per_stage(m.get<int64_t>("blocks_per_stage", o.blocks_per_stage()));
  m.check(o.blocks_per_stage() > 0 && o.blocks_per_stage() <= kMaxBlocksPerStage,
          "blocks_per_stage", "in [1, " + std::to_string(kMaxBlocksPerStage) + "]");
  return o;
}

}  // namespace ebm
