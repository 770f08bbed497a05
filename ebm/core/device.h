// Which device a run uses, from its config's `device` key.
#pragma once

#include <torch/types.h>

#include <string>

namespace ebm {

// "auto" (CUDA when available), "cpu", "cuda", "cuda:N". Throws ConfigError for others or for a
// CUDA device that is not there.
torch::Device resolve_device(const std::string& spec);

}  // namespace ebm
