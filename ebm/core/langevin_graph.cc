#include "ebm/core/langevin_graph.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>

#include <stdexcept>
#include <string>
#include <utility>

#ifdef EBM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace ebm {

namespace {

void append_tensor(std::vector<int64_t>& signature, const torch::Tensor& t) {
  if (!t.defined()) {
    signature.push_back(-1);
    return;
  }
  signature.push_back(t.dim());
  for (const auto s : t.sizes()) signature.push_back(s);
  for (const auto s : t.strides()) signature.push_back(s);
  signature.push_back(static_cast<int64_t>(t.scalar_type()));
  signature.push_back(static_cast<int64_t>(t.device().type()));
  signature.push_back(t.device().index());
}

int64_t address(const void* p) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(p)); }

thread_local bool capturing = false;

}  // namespace

bool capturing_chain() { return capturing; }

std::vector<int64_t> chain_signature(EnergyModel& model, const ChainInputs& in,
                                     const std::optional<at::Generator>& generator) {
  std::vector<int64_t> signature;
  append_tensor(signature, in.x0);
  append_tensor(signature, in.condition);
  append_tensor(signature, in.keep);
  signature.push_back(address(&model));
  signature.push_back(model.is_training() ? 1 : 0);
  // The graph reads weights by address: an optimiser's in-place update is seen by the replay, a
  // load that replaces the storage needs a new capture.
  for (const auto& p : model.parameters()) signature.push_back(address(p.data_ptr()));
  for (const auto& b : model.buffers()) signature.push_back(address(b.data_ptr()));
  const auto type = in.x0.device().type();
  signature.push_back(at::autocast::is_autocast_enabled(type) ? 1 : 0);
  signature.push_back(static_cast<int64_t>(at::autocast::get_autocast_dtype(type)));
  signature.push_back(generator ? address(generator->unsafeGetGeneratorImpl()) : 0);
  return signature;
}

#ifdef EBM_WITH_CUDA

struct CapturedChains::Graph {
  std::vector<int64_t> signature;
  ChainInputs in;  // static copies the graph reads
  torch::Tensor x, stats;
  // Held so that its address, part of the signature, cannot be reused by another generator.
  std::optional<at::Generator> generator;
  at::cuda::CUDAGraph graph;
};

namespace {

// One eager step of the chain on scratch copies, so that lazy initialisation (cuBLAS handles,
// cuDNN plans, autograd's device threads) happens before the capture; the generator's state is
// restored after it.
void warm_up(const LangevinSampler& sampler, EnergyModel& model, const ChainInputs& in,
             const std::optional<at::Generator>& generator) {
  auto gen = generator ? *generator : at::globalContext().defaultGenerator(in.x0.device());
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  const LangevinSampler one_step(LangevinOptions(sampler.options()).steps(1));
  auto x = in.x0.clone();
  const auto stats = torch::zeros({1, 2}, in.x0.options().dtype(torch::kFloat64));
  one_step.run_steps(model, x, in, stats, generator);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// Autocast's cache of weight casts off for the scope: a cast the cache already holds would not be
// captured, and the graph would read that cast's memory after the cache lets it go (PyTorch's
// CUDA-graph notes ask the same: autocast with cache_enabled=False).
class AutocastCacheOff {
 public:
  AutocastCacheOff() : was_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(was_); }
  AutocastCacheOff(const AutocastCacheOff&) = delete;
  AutocastCacheOff& operator=(const AutocastCacheOff&) = delete;

 private:
  bool was_;
};

std::unique_ptr<CapturedChains::Graph> capture(const LangevinSampler& sampler, EnergyModel& model,
                                               const ChainInputs& in,
                                               const std::optional<at::Generator>& generator) {
  auto g = std::make_unique<CapturedChains::Graph>();
  g->in.x0 = in.x0.clone();
  if (in.condition.defined()) g->in.condition = in.condition.clone();
  if (in.keep.defined()) g->in.keep = in.keep.clone();
  g->x = torch::empty_like(in.x0);
  g->stats = torch::zeros({sampler.options().steps(), 2}, in.x0.options().dtype(torch::kFloat64));
  g->generator = generator;
  const auto index = in.x0.device().index();
  torch::cuda::synchronize(index);
  {
    // Captures run on a side stream (the default stream cannot be captured).
    c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool(false, index));
    const AutocastCacheOff no_cached_casts;
    warm_up(sampler, model, g->in, generator);
    if (generator) g->graph.register_generator_state(*generator);
    // Thread-local mode: other threads (a data prefetcher pinning memory) may call CUDA meanwhile.
    g->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    capturing = true;
    try {
      g->x.copy_(g->in.x0);
      sampler.run_steps(model, g->x, g->in, g->stats, generator);
      capturing = false;
      g->graph.capture_end();
    } catch (const std::exception& e) {
      capturing = false;
      try {
        g->graph.capture_end();
      } catch (const std::exception&) {  // the first error is the one to report
      }
      // LibTorch leaves a generator in capture mode after a failed capture: its next eager
      // draw fails too, so the process cannot go on sampling on this device.
      throw std::runtime_error(
          std::string("Langevin: capturing the chain as a CUDA graph failed (") + e.what() +
          "); the CUDA random generator stays unusable in this process: run again with "
          "performance.cuda_graph: false");
    }
  }
  torch::cuda::synchronize(index);
  return g;
}

}  // namespace

torch::Tensor CapturedChains::run(const LangevinSampler& sampler, EnergyModel& model,
                                  const ChainInputs& in, const LangevinCallback& callback,
                                  const std::optional<at::Generator>& generator) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto signature = chain_signature(model, in, generator);
  if (!graph_ || graph_->signature != signature) {
    graph_.reset();  // frees the previous graph's memory pool before the new capture
    graph_ = capture(sampler, model, in, generator);
    graph_->signature = std::move(signature);
    ++captures_;
  }
  auto& g = *graph_;
  g.in.x0.copy_(in.x0);
  if (in.condition.defined()) g.in.condition.copy_(in.condition);
  if (in.keep.defined()) g.in.keep.copy_(in.keep);
  g.graph.replay();
  auto x = g.x.clone();
  if (callback) {
    const auto stats = g.stats.to(torch::kCPU);  // one copy for the whole chain
    for (int64_t step = 0; step < stats.size(0); ++step) sampler.report_step(stats, step, callback);
  }
  return x;
}

#else  // no CUDA in this build

struct CapturedChains::Graph {};

torch::Tensor CapturedChains::run(const LangevinSampler& /*sampler*/, EnergyModel& /*model*/,
                                  const ChainInputs& /*in*/, const LangevinCallback& /*callback*/,
                                  const std::optional<at::Generator>& /*generator*/) {
  throw std::runtime_error("Langevin: cuda_graph needs LibTorch with CUDA, this build has none");
}

#endif

CapturedChains::CapturedChains() = default;
CapturedChains::~CapturedChains() = default;

int64_t CapturedChains::captures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return captures_;
}

}  // namespace ebm
