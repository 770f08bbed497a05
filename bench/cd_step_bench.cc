// One contrastive-divergence training iteration (small_cnn on 1x28x28, batch B, K Langevin steps,
// replay buffer, clipped Adam) timed in C++. bench/cd_step_compare.py runs it side by side with
// the same iteration written in PyTorch eager (bench/cd_step_pytorch.py) and reports the ratio.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "ebm/core/trainer.h"
#include "ebm/nets/image_nets.h"
#include "ebm/util/json.h"

int main(int argc, char** argv) {
  int64_t iters = 20, warmup = 3, batch = 32, steps = 20, threads = 0;
  std::string device = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--iters")
      iters = std::atoll(v);
    else if (k == "--warmup")
      warmup = std::atoll(v);
    else if (k == "--batch")
      batch = std::atoll(v);
    else if (k == "--steps")
      steps = std::atoll(v);
    else if (k == "--threads")
      threads = std::atoll(v);
    else if (k == "--device")
      device = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const torch::Device dev(device);
  auto model = std::make_shared<ebm::ImageEnergyNet>(ebm::image_net_preset("small_cnn", 1, 0));
  auto opts =
      ebm::TrainerOptions()
          .buffer(ebm::ReplayBufferOptions().capacity(10000).storage(ebm::BufferStorage::kUint8))
          .langevin(
              ebm::LangevinOptions().steps(steps).step_size(10).noise_std(0.005).grad_clip(0.01));
  ebm::ContrastiveDivergenceTrainer trainer(model, {1, 28, 28}, opts, dev);
  auto data = torch::rand({batch * 8, 1, 28, 28});
  auto sync = [&] {
    if (dev.is_cuda()) torch::cuda::synchronize();
  };
  for (int64_t i = 0; i < warmup; ++i) trainer.step(data.narrow(0, (i % 8) * batch, batch));
  sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) trainer.step(data.narrow(0, (i % 8) * batch, batch));
  sync();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto result = ebm::util::Json::object()
                          .set("impl", "cpp")
                          .set("device", device)
                          .set("threads", torch::get_num_threads())
                          .set("batch", batch)
                          .set("steps", steps)
                          .set("iters", iters)
                          .set("ms_per_iter", ebm::util::Json::fixed(1000.0 * secs / iters, 3))
                          .compact();
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
