// Recorder overhead and rollout scaling on the Shadow Hand scene, measured side by side in one
// process (the machine is noisy): rounds alternate between the variants and medians are reported.
//
//   bench_recorder [--rounds 5] [--steps 20000] [--episode-steps 2000] [--episodes 16]
//
// 1. Step rate of mj_step on the plain scene against the scene with ebm.recorder (fields
//    qpos qvel ctrl; decimation 1 and 20; flush policy "episode", which fsyncs every episode, and
//    "none"). Target: at most 5% slower.
// 2. Rollout throughput of record_rollouts with 1 and with 2 threads. Target: at least 1.7x.
#include <mujoco/mujoco.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "plugin/recorder/recorder.h"
#include "plugin/rollout/rollout.h"

namespace fs = std::filesystem;
using namespace ebm::rollout;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double steps_per_second(const mjModel* m, long steps, long episode_steps) {
  DataPtr d(mj_makeData(m));
  OUPolicy policy(m, PolicyOptions(), 1);
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < steps; ++k) {
    if (k % episode_steps == 0) {
      mj_resetData(m, d.get());  // ends the recorder's episode: it is written here
      policy.reset(m, d.get());
    }
    policy.act(m, d.get(), k);
    mj_step(m, d.get());
  }
  d.reset();  // the last episode is written inside the timing
  return steps / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  long steps = 20000, episode_steps = 2000;
  int episodes = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (a == "--steps")
      steps = std::atol(argv[i + 1]);
    else if (a == "--episode-steps")
      episode_steps = std::atol(argv[i + 1]);
    else if (a == "--episodes")
      episodes = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  ebm::recorder::RegisterPlugin();
  const fs::path tmp =
      fs::temp_directory_path() / ("ebm_bench_recorder_" + std::to_string(getpid()));
  fs::remove_all(tmp);

  // 1. Overhead.
  SceneOptions scene;
  SpecPtr plain_spec = load_scene(scene);
  ModelPtr plain = compile(plain_spec.get());
  struct Variant {
    std::string name;
    int decimation;
    std::string flush;
    ModelPtr model;
    std::vector<double> rates;
  };
  std::vector<Variant> variants;
  for (auto [dec, flush] :
       std::vector<std::pair<int, std::string>>{{1, "episode"}, {20, "episode"}, {1, "none"}}) {
    SpecPtr spec = load_scene(scene);
    const std::string name = "recorder_dec" + std::to_string(dec) + "_" + flush;
    attach_recorder(spec.get(), {{"path", (tmp / name).string()},
                                 {"fields", "qpos qvel ctrl"},
                                 {"decimation", std::to_string(dec)},
                                 {"flush", flush}});
    variants.push_back({name, dec, flush, compile(spec.get()), {}});
  }
  std::vector<double> plain_rates;
  for (int r = 0; r < rounds; ++r) {
    // Rotate the order every round so that no variant always runs first (cold) or last.
    const int n = static_cast<int>(variants.size()) + 1;
    for (int k = 0; k < n; ++k) {
      const int i = (k + r) % n;
      if (i == 0) {
        plain_rates.push_back(steps_per_second(plain.get(), steps, episode_steps));
      } else {
        auto& v = variants[i - 1];
        v.rates.push_back(steps_per_second(v.model.get(), steps, episode_steps));
      }
    }
  }
  const double base = median(plain_rates);
  std::printf(
      "{\n  \"scene\": \"shadow_hand_block\",\n  \"steps_per_round\": %ld,\n  \"rounds\": %d,\n"
      "  \"plain_steps_per_s\": %.0f,\n  \"recorder\": [\n",
      steps, rounds, base);
  for (size_t i = 0; i < variants.size(); ++i) {
    const double rate = median(variants[i].rates);
    std::printf("    {\"variant\": \"%s\", \"steps_per_s\": %.0f, \"overhead_percent\": %.2f}%s\n",
                variants[i].name.c_str(), rate, 100.0 * (base / rate - 1.0),
                i + 1 < variants.size() ? "," : "");
  }
  std::printf("  ],\n");

  // 2. Thread scaling.
  std::map<int, std::vector<double>> eps;
  for (int r = 0; r < std::max(1, rounds / 2); ++r) {
    for (int threads : {1, 2}) {
      RecordOptions o;
      o.threads = threads;
      o.start_states = episodes / 2;
      o.branches = 2;
      o.warmup_steps = 0;
      o.episode_steps = episode_steps;
      o.out_dir = (tmp / ("scaling_" + std::to_string(r) + "_" + std::to_string(threads))).string();
      const auto res = record_rollouts(o);
      eps[threads].push_back(res.episodes / res.seconds);
    }
  }
  const double e1 = median(eps[1]), e2 = median(eps[2]);
  std::printf(
      "  \"rollout_episodes_per_s\": {\"threads_1\": %.2f, \"threads_2\": %.2f},\n"
      "  \"speedup_2_threads\": %.3f,\n  \"episode_steps\": %ld, \"episodes\": %d\n}\n",
      e1, e2, e2 / e1, episode_steps, episodes);
  fs::remove_all(tmp);
  return 0;
}
