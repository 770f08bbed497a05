// Reading an image net's options from a config's `model` section (keys in configs/README.md).
#pragma once

#include "ebm/core/config.h"
#include "ebm/nets/image_nets.h"

namespace ebm {

// Section `model`: net (preset name), conditional, num_classes, activation, spectral_norm,
// dropout, and optionally stem_filters, stage_filters, blocks_per_stage to override the preset.
ImageEnergyOptions image_net_options(const ConfigSection& model, int64_t in_channels);

}  // namespace ebm
