// Reading the core's options from config sections (keys documented in configs/README.md).
#pragma once

#include "ebm/core/config.h"
#include "ebm/core/langevin.h"
#include "ebm/core/performance.h"
#include "ebm/core/replay_buffer.h"
#include "ebm/core/trainer.h"

namespace ebm {

// Section `langevin`: steps, step_size, noise_std, clip_mode, grad_clip, clamp, temperature,
// schedule, final_step_ratio.
LangevinOptions langevin_options(const ConfigSection& s);
// Section `replay_buffer`: capacity, reinit_prob, policy, init, init_low, init_high, init_mean,
// init_std, storage.
ReplayBufferOptions buffer_options(const ConfigSection& s);
// Section `trainer` (+ the two above): objective, l2_coeff, lr, beta1, beta2, eps, weight_decay,
// clip_grad, warmup_steps, ema_decay, dequantize, use_buffer, negative_condition,
// mismatch_weight, classify_weight, classify_over, kl_weight, entropy_weight, augment_prob,
// augment_shift, augment_flip, max_bad_steps, max_restores, snapshot_every, autocast_bf16.
// num_classes: the model's classes (0: none), which the hybrid term needs.
TrainerOptions trainer_options(const ConfigSection& trainer, const ConfigSection& langevin,
                               const ConfigSection& buffer, int64_t num_classes = 0);

// Section `performance`: cuda_graph, channels_last, tf32, cudnn_benchmark, buffer_on_device,
// prefetch, async_checkpoints.
PerformanceOptions performance_options(const ConfigSection& s);

}  // namespace ebm
