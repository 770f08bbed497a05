// Latency of one `ebm.generator` sampling inside a running simulation: K futures of the default
// horizon (one window) with the trained number of Langevin steps, on this machine's CPU (or the
// GPU the checkpoint is loaded to). Target on the 2-core CPU: 100 ms or less, so that a viewer
// can show live futures.
//
//   bench_generator CHECKPOINT [--scene shadow_hand_block|particles] [--samples 8] [--rounds 20]
#include <mujoco/mujoco.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ebm/nets/trajectory_generator.h"
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
    if (a == "--scene") scene.name = argv[i + 1];
    else if (a == "--samples") samples = std::atoi(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
  }
  try {
    const auto meta = ebm::TrajectoryGenerator::load(checkpoint)->meta();
    auto spec = load_scene(scene);
    // Sample at every frame, so that every recorded frame after the history gives one latency.
    attach_plugin(spec.get(), "ebm.generator",
                  {{"checkpoint", checkpoint}, {"every", "1"}, {"samples", std::to_string(samples)}},
                  "gen");
    auto m = compile(spec.get());
    DataPtr d(mj_makeData(m.get()));
    OUPolicy policy(m.get(), PolicyOptions(), 3);
    std::vector<double> ms;
    const long steps = meta.decimation * (meta.history + rounds + 1);
    for (long k = 0; k < steps; ++k) {
      policy.act(m.get(), d.get(), k);
      mj_step(m.get(), d.get());
      if ((k + 1) % meta.decimation == 0 && (k + 1) / meta.decimation > meta.history) {
        ms.push_back(ebm_generator_last_latency_ms(m.get(), d.get()));
      }
    }
    std::sort(ms.begin(), ms.end());
    std::printf("{\"benchmark\": \"generator_latency\", \"scene\": \"%s\", \"samples\": %d, "
                "\"frames\": %lld, \"langevin_steps\": %lld, \"dim\": %lld, \"samplings\": %zu, "
                "\"median_ms\": %.1f, \"min_ms\": %.1f, \"max_ms\": %.1f}\n",
                scene.name.c_str(), samples, static_cast<long long>(meta.future),
                static_cast<long long>(ebm::TrajectoryGenerator::load(checkpoint)->langevin().steps()),
                static_cast<long long>(meta.dim), ms.size(), ms[ms.size() / 2], ms.front(), ms.back());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
