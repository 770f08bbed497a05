// Latency of one `ebm.generator` sampling inside a running simulation: K futures of the default
// horizon (one window) with the trained number of Langevin steps, on this machine's CPU (or the
// GPU the checkpoint is loaded to); for a checkpoint with experts, side by side with the learned
// energy alone. Target on the 2-core CPU: 100 ms or less, so that a viewer
// can show live futures.
//
//   bench_generator CHECKPOINT [--scene shadow_hand_block|particles] [--samples 8] [--rounds 20]
#include <mujoco/mujoco.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ebm/nets/trajectory_generator.h"
#include "ebm/util/json.h"
#include "plugin/generator/generator.h"
#include "plugin/rollout/rollout.h"

using namespace ebm::rollout;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CHECKPOINT [--scene S] [--samples K] [--rounds N]\n", argv[0]);
    return 2;
  }
  const std::string checkpoint = argv[1];
  SceneOptions scene;
  int samples = 8, rounds = 20;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--scene")
      scene.name = argv[i + 1];
    else if (a == "--samples")
      samples = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
  }
  if (rounds < 2 || samples < 1) {
    std::fprintf(stderr, "error: --rounds must be >= 2 and --samples >= 1\n");
    return 2;
  }
  try {
    const auto loaded = ebm::TrajectoryGenerator::load(checkpoint);
    const auto meta = loaded->meta();
    // Side by side: the checkpoint as stored (the net composed with the experts it was trained
    // with) and a copy with the experts' weights set to 0 (the learned energy alone).
    const bool composed = loaded->limit_weight() > 0 || loaded->kinematic_weight() > 0;
    const std::string alone = (std::filesystem::temp_directory_path() /
                               ("bench_generator_net_alone_" + std::to_string(::getpid()) + ".pt"))
                                  .string();
    if (composed) {
      loaded->set_limit_weight(0);
      loaded->set_kinematic_weight(0);
      loaded->save(alone);
    }
    // Latencies of `count` samplings, sampling at every frame after the history.
    auto measure = [&](const std::string& path, int count) {
      auto spec = load_scene(scene);
      attach_plugin(spec.get(), "ebm.generator",
                    {{"checkpoint", path}, {"every", "1"}, {"samples", std::to_string(samples)}},
                    "gen");
      auto m = compile(spec.get());
      DataPtr d(mj_makeData(m.get()));
      OUPolicy policy(m.get(), PolicyOptions(), 3);
      std::vector<double> ms;
      const long steps = meta.decimation * (meta.history + count);
      for (long k = 0; k < steps; ++k) {
        policy.act(m.get(), d.get(), k);
        mj_step(m.get(), d.get());
        if ((k + 1) % meta.decimation == 0 && (k + 1) / meta.decimation > meta.history) {
          ms.push_back(ebm_generator_last_latency_ms(m.get(), d.get()));
        }
      }
      return ms;
    };
    std::vector<double> stored, net_only;
    for (int half = 0; half < 2;
         ++half) {  // alternate, so that a slow phase of the machine hits both
      for (double v : measure(checkpoint, rounds / 2 + 1)) stored.push_back(v);
      if (composed)
        for (double v : measure(alone, rounds / 2 + 1)) net_only.push_back(v);
    }
    if (composed) std::filesystem::remove(alone);
    auto print = [&](const char* energy, std::vector<double> ms) {
      std::sort(ms.begin(), ms.end());
      using ebm::util::Json;
      const auto result = Json::object()
                              .set("benchmark", "generator_latency")
                              .set("energy", energy)
                              .set("scene", scene.name)
                              .set("samples", samples)
                              .set("frames", meta.future)
                              .set("langevin_steps", loaded->langevin().steps())
                              .set("dim", meta.dim)
                              .set("samplings", ms.size())
                              .set("median_ms", Json::fixed(ms[ms.size() / 2], 1))
                              .set("min_ms", Json::fixed(ms.front(), 1))
                              .set("max_ms", Json::fixed(ms.back(), 1))
                              .compact();
      std::printf("%s\n", result.dump().c_str());
    };
    print(composed ? "net+experts" : "net", stored);
    if (composed) {
      print("net", net_only);
      std::sort(stored.begin(), stored.end());
      std::sort(net_only.begin(), net_only.end());
      const double ratio = stored[stored.size() / 2] / net_only[net_only.size() / 2];
      const auto result = ebm::util::Json::object()
                              .set("benchmark", "generator_latency_ratio")
                              .set("experts_over_net", ebm::util::Json::fixed(ratio, 2))
                              .compact();
      std::printf("%s\n", result.dump().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
