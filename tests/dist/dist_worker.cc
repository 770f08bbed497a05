// One process of a data-parallel group, for the tests and the benchmark; started with the
// launcher's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), by them or by torchrun.
//   ebm_dist_worker train OUT STEPS [DELAY_MS]
//       trains TinyEnergy (tiny_run.h) on batches of 8 rows; after every step writes
//       OUT/rank<r>-step<k>.pt: the replicated state ("state.<i>"), the rank's positives ("pos")
//       and negatives ("neg"); sleeps DELAY_MS after each step (to be killed mid-run).
//   ebm_dist_worker bench STEPS BATCH [NET]
//       trains NET (an image preset, default small_cnn on 1x28x28) on random images, BATCH per
//       rank, 20 Langevin steps; rank 0 prints one JSON line after 5 warm-up steps: steps per
//       second, the seconds per step spent waiting for the other ranks to reach the gradient
//       all-reduce (a barrier, in this benchmark only) and in the all-reduce itself, the bytes it
//       reduced.
//   ebm_dist_worker params NET CHANNELS CLASSES
//       prints the weight count of an image preset and the bytes one all-reduce of its float32
//       gradients moves (for the on-paper multi-GPU estimate in bench/README.md).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ebm/dist/data_parallel.h"
#include "ebm/nets/image_nets.h"
#include "tests/dist/tiny_run.h"

namespace {

using ebm::testing::TinyEnergy;

struct Worker {
  ebm::dist::DataParallel dp;
  std::shared_ptr<ebm::EnergyModel> model;
  std::unique_ptr<ebm::ContrastiveDivergenceTrainer> trainer;

  // `make_model` runs after seeding by rank; the trainer trains samples of `shape`.
  Worker(const ebm::TrainerOptions& options, const std::vector<int64_t>& shape,
         const std::function<std::shared_ptr<ebm::EnergyModel>()>& make_model)
      : dp(ebm::dist::join_from_environment(torch::kCPU)) {
    torch::manual_seed(ebm::dist::rank_seed(ebm::testing::kTinySeed, dp.rank()));
    model = make_model();
    trainer = std::make_unique<ebm::ContrastiveDivergenceTrainer>(model, shape, options);
    dp.attach(*trainer);
  }
};

int Train(const std::string& out, int64_t steps, int64_t delay_ms) {
  Worker w(ebm::testing::TinyTrainerOptions(), {ebm::testing::kTinyDim},
           [] { return std::make_shared<TinyEnergy>(ebm::testing::kTinyDim); });
  for (int64_t k = 0; k < steps; ++k) {
    const auto pos = ebm::testing::TinyBatch(k, w.dp.rank(), w.dp.world_size(), 8);
    const auto r = w.trainer->step(pos);
    torch::serialize::OutputArchive a;
    const auto state = w.trainer->replicated_state();
    for (size_t i = 0; i < state.size(); ++i) a.write("state." + std::to_string(i), state[i]);
    a.write("pos", pos);
    a.write("neg", r.negatives.x);
    a.save_to(out + "/rank" + std::to_string(w.dp.rank()) + "-step" + std::to_string(k + 1) +
              ".pt");
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
  return 0;
}

int Bench(int64_t steps, int64_t batch, const std::string& net) {
  double wait_s = 0, reduce_s = 0;
  int64_t reduce_bytes = 0;
  const auto options = ebm::TrainerOptions().langevin(ebm::LangevinOptions().steps(20));
  Worker w(options, {1, 28, 28},
           [&] { return std::make_shared<ebm::ImageEnergyNet>(ebm::image_net_preset(net, 1, 0)); });
  // Time the all-reduce inside the trainer's hook.
  w.trainer->set_grad_sync([&](std::vector<torch::Tensor>& grads) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    reduce_bytes = 0;
    for (const auto& g : grads) reduce_bytes += g.numel() * g.element_size();
    w.dp.barrier();
    const auto t1 = Clock::now();
    w.dp.average(grads);
    wait_s += std::chrono::duration<double>(t1 - t0).count();
    reduce_s += std::chrono::duration<double>(Clock::now() - t1).count();
  });
  auto run = [&](int64_t n, int64_t from) {
    for (int64_t k = from; k < from + n; ++k) w.trainer->step(torch::rand({batch, 1, 28, 28}));
  };
  run(5, 0);
  wait_s = reduce_s = 0;
  w.dp.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  run(steps, 5);
  w.dp.barrier();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (w.dp.is_main())
    std::printf(
        "{\"processes\": %d, \"steps_per_s\": %.4f, \"wait_s_per_step\": %.6f, "
        "\"allreduce_s_per_step\": %.6f, \"allreduce_bytes_per_step\": %ld}\n",
        w.dp.world_size(), static_cast<double>(steps) / s, wait_s / static_cast<double>(steps),
        reduce_s / static_cast<double>(steps), static_cast<long>(reduce_bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    torch::set_num_threads(1);
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "train" && argc >= 4)
      return Train(argv[2], std::stoll(argv[3]), argc > 4 ? std::stoll(argv[4]) : 0);
    if (mode == "params" && argc >= 5) {
      ebm::ImageEnergyNet net(
          ebm::image_net_preset(argv[2], std::stoll(argv[3]), std::stoll(argv[4])));
      int64_t n = 0;
      for (const auto& p : net.parameters()) n += p.numel();
      std::printf("{\"net\": \"%s\", \"weights\": %ld, \"gradient_bytes\": %ld}\n", argv[2],
                  static_cast<long>(n), static_cast<long>(n * 4));
      return 0;
    }
    if (mode == "bench" && argc >= 4)
      return Bench(std::stoll(argv[2]), std::stoll(argv[3]), argc > 4 ? argv[4] : "small_cnn");
    std::cerr << "usage: ebm_dist_worker train OUT STEPS [DELAY_MS] | bench STEPS BATCH [NET]\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
