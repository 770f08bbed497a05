// Forward declarations of LibTorch's serialize archives, so that headers which only mention them
// in save/load signatures do not pull in torch/serialize (the .cc files include the real thing).
#pragma once

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize
