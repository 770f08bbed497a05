// A process group of PyTorch's c10d, joined from the launcher's environment: the rendezvous
// through a TCPStore, then Gloo (CPU tensors) or NCCL (CUDA tensors, one GPU per local rank).
// Every collective turns a failure of a peer into PeerFailure naming the rank that died or hung.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/dist/launch.h"

namespace ebm::dist {

// A peer process died, hung past the timeout, or could not be reached.
class PeerFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The collective timeout: EBM_DIST_TIMEOUT (seconds) or 300 s. A rank that exits or is killed is
// noticed at once (its sockets close); one that hangs, after this long.
std::chrono::milliseconds timeout_from_environment();

class ProcessGroup {
 public:
  // Joins the group: rendezvous at MASTER_ADDR:MASTER_PORT, then Gloo when `device` is the CPU,
  // NCCL when it is a CUDA device. Throws PeerFailure when the others do not arrive in `timeout`.
  static std::shared_ptr<ProcessGroup> join(const LaunchEnv& env, torch::Device device,
                                            std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_main() const { return rank_ == 0; }
  torch::Device device() const { return device_; }
  std::string backend_name() const;

  // Collectives over tensors on device(), in place; all ranks call them in the same order.
  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  // True when `local` is true on every rank.
  bool all_true(bool local);
  // Every rank's `bytes`, in rank order, on every rank.
  std::vector<std::string> all_gather_bytes(const std::string& bytes);
  void barrier();

 private:
  ProcessGroup(const LaunchEnv& env, torch::Device device, std::chrono::milliseconds timeout);
  // Runs a collective; a c10d failure becomes PeerFailure naming the unresponsive ranks.
  template <class F>
  void guarded(const char* what, F&& collective);
  [[noreturn]] void fail(const char* what, const std::string& cause);

  int rank_, size_;
  torch::Device device_;
  std::chrono::milliseconds timeout_;
  std::string address_;  // MASTER_ADDR:MASTER_PORT, for messages
  struct C10d;           // the c10d store and backend (their headers stay in process_group.cc)
  std::unique_ptr<C10d> c10d_;
};

}  // namespace ebm::dist
