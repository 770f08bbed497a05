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
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ebm/util/json.h"
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

struct Args {
  int rounds = 5;
  long steps = 20000, episode_steps = 2000;
  int episodes = 16;
};

// --rounds, --steps, --episode-steps, --episodes; nullopt (after a message) for anything else.
std::optional<Args> parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--rounds") {
      args.rounds = std::atoi(argv[i + 1]);
    } else if (a == "--steps") {
      args.steps = std::atol(argv[i + 1]);
    } else if (a == "--episode-steps") {
      args.episode_steps = std::atol(argv[i + 1]);
    } else if (a == "--episodes") {
      args.episodes = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return std::nullopt;
    }
  }
  return args;
}

// 1. Overhead: the plain scene against recorder variants, in rotating order every round so that
// no variant always runs first (cold) or last.
ebm::util::Json overhead(const Args& args, const fs::path& tmp) {
  SceneOptions scene;
  SpecPtr plain_spec = load_scene(scene);
  ModelPtr plain = compile(plain_spec.get());
  struct Variant {
    std::string name;
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
    variants.push_back({name, compile(spec.get()), {}});
  }
  std::vector<double> plain_rates;
  for (int r = 0; r < args.rounds; ++r) {
    const int n = static_cast<int>(variants.size()) + 1;
    for (int k = 0; k < n; ++k) {
      const int i = (k + r) % n;
      const mjModel* m = i == 0 ? plain.get() : variants[i - 1].model.get();
      auto& rates = i == 0 ? plain_rates : variants[i - 1].rates;
      rates.push_back(steps_per_second(m, args.steps, args.episode_steps));
    }
  }
  const double base = median(plain_rates);
  using ebm::util::Json;
  auto recorder = Json::array();
  for (const auto& v : variants) {
    const double rate = median(v.rates);
    recorder.push(Json::object()
                      .set("variant", v.name)
                      .set("steps_per_s", Json::fixed(rate, 0))
                      .set("overhead_percent", Json::fixed(100.0 * (base / rate - 1.0), 2))
                      .compact());
  }
  return Json::object()
      .set("scene", "shadow_hand_block")
      .set("steps_per_round", args.steps)
      .set("rounds", args.rounds)
      .set("plain_steps_per_s", Json::fixed(base, 0))
      .set("recorder", std::move(recorder));
}

// 2. Thread scaling of the rollout driver: episodes per second with 1 and 2 threads.
void thread_scaling(const Args& args, const fs::path& tmp, ebm::util::Json& result) {
  std::map<int, std::vector<double>> eps;
  for (int r = 0; r < std::max(1, args.rounds / 2); ++r) {
    for (int threads : {1, 2}) {
      RecordOptions o;
      o.threads = threads;
      o.start_states = args.episodes / 2;
      o.branches = 2;
      o.warmup_steps = 0;
      o.episode_steps = args.episode_steps;
      o.out_dir = (tmp / ("scaling_" + std::to_string(r) + "_" + std::to_string(threads))).string();
      const auto res = record_rollouts(o);
      eps[threads].push_back(res.episodes / res.seconds);
    }
  }
  const double e1 = median(eps[1]), e2 = median(eps[2]);
  using ebm::util::Json;
  result
      .set("rollout_episodes_per_s", Json::object()
                                         .set("threads_1", Json::fixed(e1, 2))
                                         .set("threads_2", Json::fixed(e2, 2))
                                         .compact())
      .set("speedup_2_threads", Json::fixed(e2 / e1, 3))
      .set("episode_steps", args.episode_steps)
      .set("episodes", args.episodes);
}

}  // namespace

int main(int argc, char** argv) {
  const auto args = parse_args(argc, argv);
  if (!args) return 2;
  ebm::recorder::RegisterPlugin();
  const fs::path tmp =
      fs::temp_directory_path() / ("ebm_bench_recorder_" + std::to_string(getpid()));
  fs::remove_all(tmp);
  auto result = overhead(*args, tmp);
  thread_scaling(*args, tmp, result);
  std::printf("%s\n", result.dump().c_str());
  fs::remove_all(tmp);
  return 0;
}
