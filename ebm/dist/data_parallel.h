// Data-parallel training over a ProcessGroup, the same way for every trainer of the project:
// rank 0's replicated state is everyone's at the start, gradients are averaged across ranks
// before each update, the non-finite guard votes, and checkpoints carry every rank's own state
// (replay buffer, RNG) inside rank 0's file.
#pragma once

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ebm/core/config.h"
#include "ebm/core/trainer.h"
#include "ebm/dist/process_group.h"

namespace ebm::dist {

class DataParallel {
 public:
  // group may be null: one process, and every method does what one process needs (nothing).
  explicit DataParallel(std::shared_ptr<ProcessGroup> group);

  bool active() const { return group_ != nullptr; }
  int rank() const { return group_ ? group_->rank() : 0; }
  int world_size() const { return group_ ? group_->size() : 1; }
  bool is_main() const { return rank() == 0; }
  ProcessGroup* group() const { return group_.get(); }

  // Gives every rank rank 0's replicated state and installs the trainer's hooks (gradient
  // averaging, the guard's vote). Call after the trainer is built (and resumed).
  void attach(ContrastiveDivergenceTrainer& trainer);
  // The same for a model trained by hand (a baseline): rank 0's `state` everywhere, and a
  // function to call between backward and the optimizer step that averages the gradients of
  // `params` (and returns whether the step is finite on every rank).
  void replicate(std::vector<torch::Tensor> state);
  bool average_gradients(const std::vector<torch::Tensor>& params);
  // The mean over ranks of each gradient, in place (the trainer's gradient hook).
  void average(std::vector<torch::Tensor>& grads);
  // The sum and the mean over ranks of each value (every rank calls them with as many values).
  std::vector<double> sum(std::vector<double> values);
  std::vector<double> mean(std::vector<double> values);

  // Checkpoints. Every rank calls checkpoint_extras at the same step (it gathers every rank's
  // local state: replay buffer, RNG); rank 0 passes the archive it writes to the returned
  // function, which adds the other ranks' states as "dist.rank<r>" and the world size as
  // "dist.world_size" (on the other ranks the function does nothing).
  std::function<void(torch::serialize::OutputArchive&)> checkpoint_extras(
      const ContrastiveDivergenceTrainer& trainer);
  // After trainer.load(archive) on every rank: rank r takes its own local state from the
  // archive; a rank the checkpoint has none for (it was written by fewer processes) starts an
  // empty replay buffer with its RNG seeded by rank_seed(seed, r). Returns what was done with
  // the buffers, for rank 0 to print (empty when the world size is unchanged).
  std::string resume(ContrastiveDivergenceTrainer& trainer, torch::serialize::InputArchive& archive,
                     unsigned long long seed);

  // Waits for every rank (e.g. before rank 0 reads what the others wrote).
  void barrier();

 private:
  std::shared_ptr<ProcessGroup> group_;
};

// Joins the process group the launcher describes (nullptr without one), on `device` (for CUDA,
// the local rank's GPU), with the timeout of EBM_DIST_TIMEOUT. Prints one line on rank 0.
std::shared_ptr<ProcessGroup> join_from_environment(torch::Device device);

// launch.world_size of a config: what a run under a launcher records about itself in its
// config.yaml (ebm train, ebm traj). Read, so that such a config can be given again; never a
// setting (the launcher decides). 1 when absent.
int64_t recorded_world_size(const ConfigSection& root);

// The device of this process: `device` itself, or for a CUDA device under a launcher, the local
// rank's GPU (cuda:LOCAL_RANK).
torch::Device local_device(torch::Device device);

}  // namespace ebm::dist
