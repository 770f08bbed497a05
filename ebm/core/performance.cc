#include "ebm/core/performance.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>

namespace ebm {

void apply_backend_settings(const PerformanceOptions& options) {
  auto& context = at::globalContext();
  context.setAllowTF32CuBLAS(options.tf32());
  context.setAllowTF32CuDNN(options.tf32());
  context.setBenchmarkCuDNN(options.cudnn_benchmark());
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  }
  for (auto& b : module.buffers()) {
    if (b.dim() == 4) b.set_data(b.contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

torch::Tensor image_memory_format(const torch::Tensor& x, bool channels_last) {
  if (!channels_last || !x.defined() || x.dim() != 4) return x;
  return x.contiguous(torch::MemoryFormat::ChannelsLast);
}

AutocastScope::AutocastScope(bool on, torch::Device device) : on_(on), type_(device.type()) {
  if (!on_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(type_);
  was_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  at::autocast::set_autocast_enabled(type_, was_enabled_);
  at::autocast::set_autocast_dtype(type_, was_dtype_);
  at::autocast::clear_cache();
}

}  // namespace ebm
