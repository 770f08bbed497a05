// One contrastive-divergence training iteration (an image_net_preset net, small_cnn on 1x28x28 by
// default, resnet32_large on 3x32x32 for the paper's CIFAR-10 setting; batch B, K Langevin steps,
// uint8 replay buffer, clipped Adam) timed in C++. bench/cd_step_compare.py runs it side by side
// with the same iteration written in PyTorch eager (bench/cd_step_pytorch.py) and reports the
// ratio; both print the net's parameter count so that the twins can be checked to match.
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "ebm/core/trainer.h"
#include "ebm/nets/image_nets.h"
#include "ebm/util/json.h"

namespace {

struct BenchOptions {
  int64_t iters = 20, warmup = 3, batch = 32, steps = 20, threads = 0;
  std::string device = "cpu";
  std::string net = "small_cnn";
  int64_t channels = 1, size = 28, capacity = 10000;
  bool autocast_bf16 = false;
};

// Parses "--key value" pairs; returns false (after a message) on an unknown option.
bool parse(int argc, char** argv, BenchOptions& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--iters")
      o.iters = std::atoll(v);
    else if (k == "--warmup")
      o.warmup = std::atoll(v);
    else if (k == "--batch")
      o.batch = std::atoll(v);
    else if (k == "--steps")
      o.steps = std::atoll(v);
    else if (k == "--threads")
      o.threads = std::atoll(v);
    else if (k == "--device")
      o.device = v;
    else if (k == "--net")
      o.net = v;
    else if (k == "--channels")
      o.channels = std::atoll(v);
    else if (k == "--size")
      o.size = std::atoll(v);
    else if (k == "--capacity")
      o.capacity = std::atoll(v);
    else if (k == "--autocast-bf16")
      o.autocast_bf16 = std::atoll(v) != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return false;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "option %s needs a value\n", argv[argc - 1]);
    return false;
  }
  return true;
}

int run(const BenchOptions& o) {
  if (o.threads > 0) torch::set_num_threads(static_cast<int>(o.threads));
  torch::manual_seed(0);
  const torch::Device dev(o.device);
  auto model = std::make_shared<ebm::ImageEnergyNet>(ebm::image_net_preset(o.net, o.channels, 0));
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  auto opts =
      ebm::TrainerOptions()
          .buffer(
              ebm::ReplayBufferOptions().capacity(o.capacity).storage(ebm::BufferStorage::kUint8))
          .langevin(
              ebm::LangevinOptions().steps(o.steps).step_size(10).noise_std(0.005).grad_clip(0.01))
          .autocast_bf16(o.autocast_bf16);
  ebm::ContrastiveDivergenceTrainer trainer(model, {o.channels, o.size, o.size}, opts, dev);
  auto data = torch::rand({o.batch * 8, o.channels, o.size, o.size});
  auto sync = [&] {
    if (dev.is_cuda()) torch::cuda::synchronize();
  };
  for (int64_t i = 0; i < o.warmup; ++i) trainer.step(data.narrow(0, (i % 8) * o.batch, o.batch));
  sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.iters; ++i) trainer.step(data.narrow(0, (i % 8) * o.batch, o.batch));
  sync();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto result = ebm::util::Json::object()
                          .set("impl", "cpp")
                          .set("device", o.device)
                          .set("threads", torch::get_num_threads())
                          .set("batch", o.batch)
                          .set("steps", o.steps)
                          .set("iters", o.iters)
                          .set("net", o.net)
                          .set("channels", o.channels)
                          .set("size", o.size)
                          .set("capacity", o.capacity)
                          .set("autocast_bf16", o.autocast_bf16)
                          .set("params", params)
                          .set("ms_per_iter", ebm::util::Json::fixed(1000.0 * secs / o.iters, 3))
                          .compact();
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  if (!parse(argc, argv, o)) return 2;
  try {
    return run(o);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_cd_step: %s\n", error.what());
    return 1;
  }
}
