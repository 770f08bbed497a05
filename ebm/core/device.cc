#include "ebm/core/device.h"

#include <torch/cuda.h>

#include "ebm/core/config.h"

namespace ebm {

torch::Device resolve_device(const std::string& spec) {
  if (spec == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::kCPU;
  if (spec == "cpu") return torch::kCPU;
  if (spec.rfind("cuda", 0) == 0) {
    int index = 0;
    if (spec.size() > 4) {
      if (spec[4] != ':')
        throw ConfigError("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
      try {
        index = std::stoi(spec.substr(5));
      } catch (const std::exception&) {
        throw ConfigError("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
      }
    }
    if (!torch::cuda::is_available() || index >= static_cast<int>(torch::cuda::device_count()))
      throw ConfigError("device '" + spec + "' requested, but this machine has " +
                        std::to_string(torch::cuda::device_count()) + " CUDA devices");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw ConfigError("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
}

}  // namespace ebm
