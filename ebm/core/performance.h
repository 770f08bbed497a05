// Speed settings: options that change how a run computes, not what it computes (up to the
// rounding of bf16 and TF32, which their options name). Each one works on the CPU too: the CUDA
// features fall back to the plain code path there, so a config runs unchanged on either device.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>

namespace ebm {

struct PerformanceOptions {
  // The Langevin chain captured once as a CUDA graph and replayed (static shapes: re-captured
  // when the batch, condition or mask shape, the model's weights' storage, or the autocast state
  // changes). CUDA only: on the CPU the chain runs eagerly.
  TORCH_ARG(bool, cuda_graph) = false;
  // Weights of 4-D convolutions and image batches in channels-last (NHWC) memory format, which
  // cuDNN's tensor-core kernels prefer; the same values either way.
  TORCH_ARG(bool, channels_last) = false;
  // TF32 tensor cores for float32 matmul and convolution on CUDA (10-bit mantissa products).
  TORCH_ARG(bool, tf32) = false;
  // cuDNN tries its convolution algorithms for each new shape and keeps the fastest.
  TORCH_ARG(bool, cudnn_benchmark) = false;
  // The replay buffer's states kept on the training device (uint8 storage: a quarter of the
  // bytes), so drawing and pushing chains moves no states between host and device.
  TORCH_ARG(bool, buffer_on_device) = false;
  // The next data batch is gathered on a background thread (into pinned memory on CUDA, copied
  // without blocking) while the current step runs.
  TORCH_ARG(bool, prefetch) = true;
  // Checkpoints are serialised on the training thread (a copy of the state) and written to disk
  // on a background thread.
  TORCH_ARG(bool, async_checkpoints) = false;
};

// Applies the process-wide settings (tf32, cudnn_benchmark) to LibTorch's global context.
void apply_backend_settings(const PerformanceOptions& options);

// Converts the module's 4-D weights and buffers to channels-last memory format in place (their
// storage changes; optimisers must be built afterwards).
void to_channels_last(torch::nn::Module& module);
// x in channels-last format when `channels_last` and x is a 4-D image batch; x otherwise.
torch::Tensor image_memory_format(const torch::Tensor& x, bool channels_last);

// bf16 autocast of the device type's operators for the scope (CUDA, or the CPU's own autocast),
// restoring the previous state on exit. Off: does nothing.
class AutocastScope {
 public:
  AutocastScope(bool on, torch::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
  c10::DeviceType type_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

}  // namespace ebm
