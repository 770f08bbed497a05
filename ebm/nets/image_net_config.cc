#include "ebm/nets/image_net_config.h"

namespace ebm {

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
  o.dropout(m.get<double>("dropout", o.dropout()));
  m.check(o.dropout() >= 0 && o.dropout() < 1, "dropout", "in [0, 1)");
  o.stem_filters(m.get<int64_t>("stem_filters", o.stem_filters()));
  m.check(o.stem_filters() > 0, "stem_filters", "> 0");
  o.stage_filters(m.get<std::vector<int64_t>>("stage_filters", o.stage_filters()));
  m.check(!o.stage_filters().empty(), "stage_filters", "a non-empty list");
  o.blocks_per_stage(m.get<int64_t>("blocks_per_stage", o.blocks_per_stage()));
  m.check(o.blocks_per_stage() > 0, "blocks_per_stage", "> 0");
  return o;
}

}  // namespace ebm
