// The one Langevin sampler of the project. Every domain (images, trajectories, composition,
// completion, purification) samples through it; variations are options, not new loops.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ebm/core/archive_fwd.h"
#include "ebm/core/energy.h"
#include "ebm/core/options.h"

namespace ebm {

enum class GradClip { kNone, kElementwise, kL2 };
inline constexpr EnumName<GradClip> kGradClipNames[] = {
    {GradClip::kNone, "none"}, {GradClip::kElementwise, "elementwise"}, {GradClip::kL2, "l2"}};
enum class StepSchedule { kConstant, kLinear, kCosine };
inline constexpr EnumName<StepSchedule> kStepScheduleNames[] = {
    {StepSchedule::kConstant, "constant"},
    {StepSchedule::kLinear, "linear"},
    {StepSchedule::kCosine, "cosine"}};

// Statistics of one Langevin step, handed to the per-step callback.
struct LangevinStepStats {
  int64_t step = 0;        // 0-based
  double step_size = 0;    // after the schedule
  double mean_energy = 0;  // mean E over the batch, before the update
  double grad_norm = 0;    // mean over samples of the L2 norm of the (unclipped) gradient
};
using LangevinCallback = std::function<void(const LangevinStepStats&)>;

struct LangevinOptions {
  // Number of Langevin steps.
  TORCH_ARG(int64_t, steps) = 60;
  // Gradient step: x <- x - step_size * clip(grad E(x)).
  TORCH_ARG(double, step_size) = 10.0;
  // Std of the Gaussian noise added before each gradient evaluation (the original's order).
  TORCH_ARG(double, noise_std) = 0.005;
  // Gradient clipping: element-wise to +-grad_clip, or per-sample L2 norm <= grad_clip.
  TORCH_ARG(GradClip, clip_mode) = GradClip::kElementwise;
  TORCH_ARG(double, grad_clip) = 0.01;
  // Optional box constraint applied after every step (images: [0, 1]).
  TORCH_ARG(std::optional<double>, clamp_min) = 0.0;
  TORCH_ARG(std::optional<double>, clamp_max) = 1.0;
  // The gradient is taken of temperature * E.
  TORCH_ARG(double, temperature) = 1.0;
  // Step-size schedule from step_size down to step_size * final_step_ratio.
  TORCH_ARG(StepSchedule, schedule) = StepSchedule::kConstant;
  TORCH_ARG(double, final_step_ratio) = 1.0;

 public:  // TORCH_ARG leaves the struct in a private section
  // Throws OptionError ("langevin.<key> must be ...") for a field out of range.
  void validate() const;
  // Every field under "<prefix><key>" (enums by name; no clamp bound is stored as none), and
  // back; a field missing from the archive keeps its default.
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  static LangevinOptions load(torch::serialize::InputArchive& archive, const std::string& prefix);
};

// How the chain runs: step by step (kEager), or captured once as a CUDA graph and replayed
// (kCudaGraph, CUDA tensors only; the CPU runs eagerly). Both give the same samples bit for bit
// from the same generator state.
enum class ChainExecution { kEager, kCudaGraph };

// What one chain reads besides its state: the starts, the condition (undefined when none) and
// where the mask keeps x0 (undefined when there is no mask).
struct ChainInputs {
  torch::Tensor x0, condition, keep;
};

class CapturedChains;  // langevin_graph.h

class LangevinSampler {
 public:
  explicit LangevinSampler(LangevinOptions options = {},
                           ChainExecution execution = ChainExecution::kEager);

  // Runs the chain from x0 and returns the final samples (detached, same shape as x0).
  //  condition: passed to the energy (undefined when none).
  //  mask: bool or 0/1 tensor broadcastable to x0; only entries where it is true change,
  //        the others keep their x0 values bit for bit.
  //  callback: called with each step's statistics: after the step (one host sync per step), or,
  //            for a chain replayed as a CUDA graph, after the whole chain (one sync in all).
  //  generator: the noise's random generator (default: the global one).
  // The energy's graph is freed after each step: memory does not grow with the number of steps.
  torch::Tensor sample(EnergyModel& model, const torch::Tensor& x0,
                       const torch::Tensor& condition = {}, const torch::Tensor& mask = {},
                       const LangevinCallback& callback = nullptr,
                       std::optional<at::Generator> generator = std::nullopt) const;

  double step_size_at(int64_t step) const;
  const LangevinOptions& options() const { return options_; }
  // CUDA graphs captured so far by this sampler and its copies (0 for eager chains).
  int64_t graph_captures() const;

  // The chain's steps on x in place, what sample() runs eagerly or captures: no host sync. When
  // stats is defined ([steps, 2]), row s receives step s's mean energy and mean gradient norm.
  void run_steps(EnergyModel& model, torch::Tensor& x, const ChainInputs& in,
                 const torch::Tensor& stats, const std::optional<at::Generator>& generator,
                 const std::function<void(int64_t)>& after_step = nullptr) const;
  // Hands step `step`'s row of such statistics to the callback as LangevinStepStats.
  void report_step(const torch::Tensor& stats, int64_t step,
                   const LangevinCallback& callback) const;

 private:
  torch::Tensor run_eagerly(EnergyModel& model, const ChainInputs& in,
                            const LangevinCallback& callback,
                            const std::optional<at::Generator>& generator) const;

  LangevinOptions options_;
  // The captured graphs (kCudaGraph; null for eager chains): shared by copies of this sampler,
  // whose options are the same, and guarded by a mutex.
  std::shared_ptr<CapturedChains> graphs_;
};

}  // namespace ebm
