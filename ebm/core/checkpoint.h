// Checkpoints: one LibTorch archive per save, written atomically (temp file, fsync, rename), the
// last K kept, the best (lowest metric) kept as best.pt, and `latest` naming the newest.
#pragma once

#include <torch/serialize/archive.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ebm {

class CheckpointManager {
 public:
  explicit CheckpointManager(std::string dir, int64_t keep_last = 3);

  // Writes <dir>/ckpt-<step>.pt from `fill`, then prunes to the last `keep_last`; when `metric`
  // is given and lower than the best so far, also writes best.pt. Returns the path written.
  std::string save(int64_t step, const std::function<void(torch::serialize::OutputArchive&)>& fill,
                   std::optional<double> metric = std::nullopt);
  // The newest checkpoint in the folder, if any.
  std::optional<std::string> latest() const;
  std::vector<std::string> list() const;
  const std::string& dir() const { return dir_; }

  // Opens a checkpoint file for reading, with an error naming the file when it is not one.
  static void load(const std::string& path, torch::serialize::InputArchive& archive,
                   torch::Device device = torch::kCPU);

 private:
  std::string dir_;
  int64_t keep_last_;
  std::optional<double> best_;
};

}  // namespace ebm
