// Checkpoints: one LibTorch archive per save, written atomically (temp file, fsync, rename), the
// last K kept, the best (lowest metric) kept as best.pt, and `latest` naming the newest. Writing
// can happen off the training thread (CheckpointWrites::kBackground): the state is serialised to
// memory by save() itself, so training may change it at once, and the sealing, fsync and rename
// run on a background thread, one checkpoint at a time.
#pragma once

#include <torch/serialize/archive.h>

#include <functional>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace ebm {

enum class CheckpointWrites { kInline, kBackground };

class CheckpointManager {
 public:
  explicit CheckpointManager(std::string dir, int64_t keep_last = 3,
                             CheckpointWrites writes = CheckpointWrites::kInline);
  // Waits for a background write (an error of it is printed: call wait() to receive it).
  ~CheckpointManager();
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;

  // Writes <dir>/ckpt-<step>.pt from `fill`, then prunes to the last `keep_last`; when `metric`
  // is given and lower than the best so far, also writes best.pt. Returns the path written (for
  // background writes: the path being written; the previous write is waited for first, and its
  // error, if any, thrown here).
  std::string save(int64_t step, const std::function<void(torch::serialize::OutputArchive&)>& fill,
                   std::optional<double> metric = std::nullopt);
  // Waits until the background write in flight (if any) is on disk; throws its error.
  void wait();
  // The newest checkpoint in the folder, if any.
  std::optional<std::string> latest() const;
  std::vector<std::string> list() const;
  const std::string& dir() const { return dir_; }

  // Opens a checkpoint file for reading, with an error naming the file when it is not one.
  static void load(const std::string& path, torch::serialize::InputArchive& archive,
                   torch::Device device = torch::kCPU);

 private:
  // Seals and writes serialised archive bytes, best.pt and best.json, and prunes.
  void write(int64_t step, const std::string& bytes, std::optional<double> metric);

  std::string dir_;
  int64_t keep_last_;
  CheckpointWrites writes_;
  std::optional<double> best_;
  std::future<void> pending_;  // the background write in flight
};

}  // namespace ebm
