// Contrastive-divergence training of an energy model (IGEBM, Du & Mordatch 2019): positives from
// the data, negatives from the one Langevin sampler started in the replay buffer; loss
// objective(E+, E-) + alpha (E+^2 + E-^2); Adam; a guard against non-finite steps.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/adam.h"
#include "ebm/core/archive_fwd.h"
#include "ebm/core/energy.h"
#include "ebm/core/langevin.h"
#include "ebm/core/options.h"
#include "ebm/core/performance.h"
#include "ebm/core/replay_buffer.h"

namespace ebm {

enum class Objective { kCD, kLogSumExp, kSoftplus };
inline constexpr EnumName<Objective> kObjectiveNames[] = {{Objective::kCD, "cd"},
                                                          {Objective::kLogSumExp, "logsumexp"},
                                                          {Objective::kSoftplus, "softplus"}};

// Conditions the negatives of a conditional model are sampled under: the ones stored with their
// buffer states (kBuffer, IGEBM's labelled buffer), or the batch's own (kBatch: every chain, from
// whatever buffer state, is moved under the positive's condition, so each positive is contrasted
// with a sample for the same condition and the energy must read it; suits continuous conditions
// such as trajectory histories, which never repeat).
enum class NegativeCondition { kBuffer, kBatch };
inline constexpr EnumName<NegativeCondition> kNegativeConditionNames[] = {
    {NegativeCondition::kBuffer, "buffer"}, {NegativeCondition::kBatch, "batch"}};

// The classes the hybrid term's softmax runs over: all of the model's (kAll), or only the labels
// present in the batch (kBatch: the continual-learning objective of Li, Du, van de Ven and Mordatch
// 2020, which leaves out of the softmax the classes of earlier tasks that a batch does not show,
// so a task's training does not push their logits down).
enum class ClassifyOver { kAll, kBatch };
inline constexpr EnumName<ClassifyOver> kClassifyOverNames[] = {{ClassifyOver::kAll, "all"},
                                                                {ClassifyOver::kBatch, "batch"}};

struct TrainerOptions {
  // cd: E+ - E-; logsumexp: E+ - sum softmax(-E-) E-; softplus: softplus(2 (E+ - E-)).
  TORCH_ARG(Objective, objective) = Objective::kCD;
  // alpha of the L2 term alpha * mean(E+^2 + E-^2).
  TORCH_ARG(double, l2_coeff) = 1.0;
  // Positives become x * 255/256 + U(0, 1/256) (8-bit images); off for continuous data.
  TORCH_ARG(bool, dequantize) = true;
  TORCH_ARG(AdamOptions, adam) = AdamOptions();
  // Linear learning-rate warm-up over this many steps (0: none).
  TORCH_ARG(int64_t, warmup_steps) = 0;
  // Exponential moving average of the weights (0: off), e.g. 0.999.
  TORCH_ARG(double, ema_decay) = 0.0;
  // Start chains in the replay buffer; otherwise always from the buffer's init distribution.
  TORCH_ARG(bool, use_buffer) = true;
  TORCH_ARG(NegativeCondition, negative_condition) = NegativeCondition::kBuffer;
  // Conditional models: weight w of a mismatch term w * mean softplus(E(x_i | c_i) - E(x_i+1 |
  // c_i)), each positive against the next positive of the batch under the same condition (a
  // logistic contrast of matched and mismatched pairs). It teaches the energy to read the condition
  // even while the sampler's negatives are still far from the data (0: off; needs batches of >= 2).
  TORCH_ARG(double, mismatch_weight) = 0.0;
  // Hybrid training (JEM, Grathwohl et al. 2020) of a class-conditional model: weight of the
  // cross-entropy of p(y | x) = softmax_y(-E(x, y)) on the positives, added to the loss (0: off).
  TORCH_ARG(double, classify_weight) = 0.0;
  TORCH_ARG(ClassifyOver, classify_over) = ClassifyOver::kAll;
  // The model's classes (set from the model by whoever builds it, not a config key); the hybrid
  // term needs >= 2.
  TORCH_ARG(int64_t, num_classes) = 0;
  // Improved contrastive divergence (Du et al. 2021), the KL term: weight of
  //   E_frozen(x') - entropy_weight * mean log(nearest-neighbour distance within the batch of x'),
  // x' = one more noise-free Langevin step from each negative, differentiated through that step
  // into the parameters (the energy that scores x' is held fixed: its gradient reaches the
  // parameters only through x'). 0: off.
  TORCH_ARG(double, kl_weight) = 0.0;
  TORCH_ARG(double, entropy_weight) = 1.0;
  // Improved contrastive divergence, data augmentation as transitions: each chain start is, with
  // this probability, translated by up to augment_shift pixels (edge pixels repeated) and, when
  // augment_flip, mirrored left-right with probability 1/2, before its Langevin steps. Image
  // samples ([C, H, W]) only. 0: off.
  TORCH_ARG(double, augment_prob) = 0.0;
  TORCH_ARG(int64_t, augment_shift) = 2;
  TORCH_ARG(bool, augment_flip) = true;
  TORCH_ARG(ReplayBufferOptions, buffer) = ReplayBufferOptions();
  TORCH_ARG(LangevinOptions, langevin) = LangevinOptions();
  // Non-finite guard: a step with a NaN/Inf loss or gradient is skipped; after max_bad_steps in a
  // row the last good snapshot (taken every snapshot_every good steps) is restored and the
  // Langevin step size halved; after max_restores restorations training stops (TrainingDiverged).
  TORCH_ARG(int64_t, max_bad_steps) = 5;
  TORCH_ARG(int64_t, max_restores) = 3;
  TORCH_ARG(int64_t, snapshot_every) = 100;
  // bf16 autocast of the energy (forward and Langevin): CUDA's, or the CPU's own autocast.
  TORCH_ARG(bool, autocast_bf16) = false;
  // The speed settings the trainer applies: cuda_graph (its sampler's chains), channels_last
  // (the model and the batches), buffer_on_device (where its replay buffer keeps states).
  TORCH_ARG(PerformanceOptions, performance) = PerformanceOptions();
  // Process rank and count, for data-parallel training (only rank 0 reports warnings).
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;

 public:  // TORCH_ARG leaves the struct in a private section
  // Throws OptionError ("trainer.<key> must be ...") for a field of the trainer or of its Adam
  // options out of range (the buffer and the sampler validate theirs when they are built).
  void validate() const;
};

struct TrainStepResult {
  int64_t step = 0;  // steps taken so far (after this one)
  double loss = 0;
  double e_pos = 0;    // mean energy of the data
  double e_neg = 0;    // mean energy of the samples
  double ml_loss = 0;  // the objective's part
  double l2_loss = 0;
  double classify_loss = 0;  // the hybrid term's cross-entropy (before its weight; 0 when off)
  double kl_loss = 0;        // the KL term (before its weight; 0 when off)
  // What practitioners watch (TensorBoard): the energies of the batch's data and samples, [B]
  // each (detached, on the device), and, for a step after diagnose_next_step(), the mean norm of
  // the energy's gradient over the chains at the last Langevin step (-1 otherwise).
  torch::Tensor energies_pos, energies_neg;
  double langevin_grad_norm = -1;
  double lr = 0;
  double langevin_step_size = 0;
  bool skipped = false;   // non-finite: no update
  bool restored = false;  // the guard restored the last good snapshot
  BufferDraw negatives;   // the samples (and their conditions) the batch was contrasted with
};

class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ContrastiveDivergenceTrainer {
 public:
  // sample_shape: shape of one sample (e.g. {1, 28, 28}); the model is moved to `device`.
  ContrastiveDivergenceTrainer(std::shared_ptr<EnergyModel> model,
                               std::vector<int64_t> sample_shape, TrainerOptions options,
                               torch::Device device = torch::kCPU);

  // One iteration on a batch of positives [B, ...] (and their labels for a conditional model:
  // the negatives are sampled under the same labels).
  TrainStepResult step(const torch::Tensor& x_pos, const torch::Tensor& labels = {});
  // One iteration that contrasts the batch with given negatives (as a step's result holds them)
  // instead of sampling them; the replay buffer is left alone. Replays another run's samples,
  // e.g. to check data-parallel training against one process holding every rank's batch.
  TrainStepResult step_on(const torch::Tensor& x_pos, const BufferDraw& negatives,
                          const torch::Tensor& labels = {});

  // The next step() also measures the Langevin gradient norm (TrainStepResult's
  // langevin_grad_norm): one host sync per Langevin step, so only for the steps that are logged.
  void diagnose_next_step() { diagnose_ = true; }

  // Samples n states with the trainer's sampler from its buffer's init distribution (or the
  // buffer itself when from_buffer), under `labels` if the model is conditional.
  torch::Tensor sample(int64_t n, const torch::Tensor& labels = {}, bool from_buffer = false,
                       const LangevinCallback& callback = nullptr);

  // Data-parallel hooks (ebm/dist/data_parallel.h installs them). grad_sync is called with the
  // gradients after backward, before the guard and the update (an all-reduce averaging them
  // across processes); vote turns this process's verdict on the step (loss and gradients finite)
  // into the verdict of all processes, so that one bad process skips the step everywhere.
  void set_grad_sync(std::function<void(std::vector<torch::Tensor>&)> fn) {
    grad_sync_ = std::move(fn);
  }
  void set_vote(std::function<bool(bool)> fn) { vote_ = std::move(fn); }
  // The state data-parallel processes hold identically: parameters, the model's buffers
  // (spectral-norm vectors), EMA weights and the optimizer's moments.
  std::vector<torch::Tensor> replicated_state();
  // Receives the guard's warnings (default: stderr on rank 0).
  void set_warning_sink(std::function<void(const std::string&)> fn) { warn_ = std::move(fn); }

  // Swaps the model's weights with their EMA (call again to swap back). No-op without EMA.
  void swap_ema();
  bool has_ema() const { return !ema_.empty(); }

  // Everything needed to resume bit-identically: model, optimizer, buffer, EMA, RNG states,
  // step, current Langevin step size, guard counters.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);
  // The part of that state that is this process's own in data-parallel training: the replay
  // buffer and the RNG states (save and load include it).
  void save_local(torch::serialize::OutputArchive& archive) const;
  void load_local(torch::serialize::InputArchive& archive);
  // Empties the replay buffer (a process that resumes without a buffer of its own).
  void reset_buffer();

  EnergyModel& model() { return *model_; }
  std::shared_ptr<EnergyModel> model_ptr() { return model_; }
  ReplayBuffer& buffer() { return buffer_; }
  const LangevinSampler& sampler() const { return sampler_; }
  const TrainerOptions& options() const { return options_; }
  int64_t steps() const { return step_; }
  torch::Device device() const { return device_; }

 private:
  std::vector<torch::Tensor> parameters() const;
  void save_weights(torch::serialize::OutputArchive& archive) const;
  void load_weights(torch::serialize::InputArchive& archive);
  // The loss of one step and its parts (kept as tensors for backward and reporting).
  struct Loss {
    torch::Tensor e_pos, e_neg, ml, l2, classify, kl, total;
  };
  // The steps of step(), in order.
  void check_batch_shape(const torch::Tensor& x_pos) const;
  torch::Tensor positives(const torch::Tensor& x_pos) const;  // on the device, dequantised
  BufferDraw sample_negatives(const torch::Tensor& x_pos, const torch::Tensor& labels,
                              const torch::Tensor& cond);
  Loss loss(const torch::Tensor& x_pos, const torch::Tensor& cond, const BufferDraw& negatives);
  torch::Tensor classify_loss(const torch::Tensor& x_pos, const torch::Tensor& labels);
  TrainStepResult contrast(const torch::Tensor& x_pos, const torch::Tensor& cond,
                           const BufferDraw& negatives);  // loss, gradients, guard, update
  void sync_gradients(const std::vector<torch::Tensor>& params);
  // The guard's verdict (the loss and every gradient finite) and the numbers a step reports.
  struct StepScalars {
    bool finite;
    double loss, e_pos, e_neg, ml, l2, classify, kl;
  };
  StepScalars step_scalars(const Loss& l, const std::vector<torch::Tensor>& params) const;
  void skip_non_finite_step(TrainStepResult& r);  // the guard: skip, restore or give up
  void update(const std::vector<torch::Tensor>& params, double lr);
  void take_snapshot();
  void restore_snapshot();
  double lr_at(int64_t step) const;

  std::shared_ptr<EnergyModel> model_;
  std::vector<int64_t> shape_;
  TrainerOptions options_;
  torch::Device device_;
  ReplayBuffer buffer_;
  LangevinSampler sampler_;
  std::unique_ptr<Adam> adam_;
  std::vector<torch::Tensor> ema_;
  std::function<void(std::vector<torch::Tensor>&)> grad_sync_;
  std::function<bool(bool)> vote_;
  std::function<void(const std::string&)> warn_;
  int64_t step_ = 0;
  bool diagnose_ = false;       // measure the next sampling's gradient norm
  double last_grad_norm_ = -1;  // of the last sampling that was measured
  int64_t bad_in_a_row_ = 0;
  int64_t restores_ = 0;
  int64_t good_since_snapshot_ = 0;
  std::string snapshot_;  // serialized model + optimizer + EMA of the last good state
};

}  // namespace ebm
