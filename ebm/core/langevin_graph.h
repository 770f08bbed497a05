// The Langevin chain as a CUDA graph: captured once per static signature (shapes, dtypes, the
// model's weights' storage, autocast state), then replayed with the new inputs copied into its
// static buffers. Used by LangevinSampler for ChainExecution::kCudaGraph; without CUDA in the
// build, run() refuses with an error (the sampler only calls it for CUDA tensors).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"

namespace ebm {

class CapturedChains {
 public:
  CapturedChains();
  ~CapturedChains();
  CapturedChains(const CapturedChains&) = delete;
  CapturedChains& operator=(const CapturedChains&) = delete;

  // The chain of `sampler` from in.x0, as sampler.sample() returns it: replays the graph of this
  // signature, capturing it first when it is new (one eager warm-up step on a side stream, with
  // the generator's state restored after it, so the replay draws the noise an eager chain draws).
  // The callback receives every step's statistics after the replay.
  torch::Tensor run(const LangevinSampler& sampler, EnergyModel& model, const ChainInputs& in,
                    const LangevinCallback& callback,
                    const std::optional<at::Generator>& generator);

  // Captures so far (a new signature replaces the previous graph).
  int64_t captures() const;

  struct Graph;  // one captured chain and its static buffers (langevin_graph.cc)

 private:
  mutable std::mutex mutex_;
  std::unique_ptr<Graph> graph_;
  int64_t captures_ = 0;
};

// True on a thread that is capturing a chain as a CUDA graph. A graph keeps reading whatever
// memory its operations read at capture time, so code that serves a forward from host-side caches
// or checks values on the host (a sync, which a capture forbids) does the plain computation
// instead while this is true: the spectral norm's eval-mode cache, the image net's label check.
bool capturing_chain();

// What a captured chain depends on besides its inputs' values: shapes, dtypes and devices of the
// inputs, the model (its address, training mode and the storage of every parameter and buffer),
// the autocast state and the generator. (A graph always records the steps' statistics: two
// reductions per step, so that logged steps, which ask for them, replay the same graph.)
std::vector<int64_t> chain_signature(EnergyModel& model, const ChainInputs& in,
                                     const std::optional<at::Generator>& generator);

}  // namespace ebm
