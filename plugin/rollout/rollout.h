// The multi-threaded rollout driver behind `ebm record`: T threads, each with its own mjData on
// one shared mjModel that carries an `ebm.recorder` instance, roll out a smooth random policy
// from S start states, B branches (different action seeds) each. Every episode depends only on
// (seed, start state, branch), never on the thread that ran it, so the recorded episodes are the
// same for any thread count.
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "plugin/rollout/scene.h"

namespace ebm::rollout {

// Ornstein-Uhlenbeck targets in actuator-normalised units u in [-1, 1] (ctrl = mid + half * u):
// every `action_repeat` physics steps u <- u - theta * u * dt + sigma * sqrt(dt) * N(0, 1),
// clipped to [-1, 1], with dt = action_repeat * timestep. Stationary spread: sigma / sqrt(2 theta).
struct PolicyOptions {
  double theta = 2.0;      // mean reversion rate (1/s)
  double sigma = 1.0;      // noise scale (half-ranges per sqrt(s))
  int action_repeat = 20;  // physics steps per new target (the Gym hand acts every 20 substeps)
};

class OUPolicy {
 public:
  OUPolicy(const mjModel* m, const PolicyOptions& options, uint64_t seed);
  // Starts from the current controls of d (so a branch continues its start state's motion).
  void reset(const mjModel* m, const mjData* d);
  // Sets d->ctrl for physics step `step` (a new target every action_repeat steps).
  void act(const mjModel* m, mjData* d, long step);

 private:
  PolicyOptions options_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_{0.0, 1.0};
  std::vector<double> u_, mid_, half_;
};

struct RecordOptions {
  SceneOptions scene;
  PolicyOptions policy;
  int threads = 2;
  int start_states = 8;
  int branches = 8;
  long warmup_steps = 500;    // random-policy steps from the model's initial state to a start state
  long episode_steps = 2000;  // physics steps per recorded episode
  // The first prefix_steps of every episode follow a policy shared by all branches of the start
  // state (seeded by (seed, start state)), so the branches share a recorded history before they
  // diverge: the context a trajectory model is given. 0: branches diverge at once.
  long prefix_steps = 0;
  // Held-out start states (trajectory::is_validation_state(s, held_out_fraction), the window
  // datasets' validation split) may be recorded longer than the training ones, so that
  // predictions far beyond a window can be compared with true branches: their episodes run
  // held_out_episode_steps physics steps (0: episode_steps, like every other).
  double held_out_fraction = 0;
  long held_out_episode_steps = 0;
  uint64_t seed = 0;
  // Recorder attributes (see plugin/recorder/recorder.h).
  std::string fields = "qpos qvel ctrl";
  int decimation = 20;
  std::string flush = "episode";
  std::string out_dir;  // must not hold trajectory files yet
  // Sharded recording (one process of several, e.g. under torchrun): this process records the
  // start states s with s % shard_count == shard_index, all their branches, with the episode ids,
  // seeds and frames the one-process recording gives them; the shards of all processes together
  // are that recording. With shard_count > 1 out_dir may already hold the other processes' shards
  // (the caller checks it is a fresh directory before any process starts).
  int shard_index = 0;
  int shard_count = 1;
};

struct RecordResult {
  uint64_t episodes = 0;
  uint64_t episodes_lost = 0;
  uint64_t physics_steps = 0;
  double seconds = 0;
  uint64_t model_hash = 0;
  int nq = 0, nv = 0, nu = 0;
  std::string model_name;
};

// The physics steps of start state s's episodes (held_out_episode_steps for held-out states).
long episode_steps_of(const RecordOptions& options, int start_state);

// Splitmix64 of (seed, a, b): independent streams per start state and branch.
uint64_t stream_seed(uint64_t seed, uint64_t a, uint64_t b);

// Records the S x B episodes (those of its start states when sharded) into options.out_dir (one
// shard file per thread). Throws SceneError or
// std::runtime_error with a clear message; `progress(done, total)` is called from the calling
// thread about every 0.2 s and at the end.
RecordResult record_rollouts(const RecordOptions& options,
                             const std::function<void(int64_t, int64_t)>& progress = {});

// The start states (mjSTATE_INTEGRATION vectors) that record_rollouts uses, computed on a model
// without recorder: start state s runs `warmup_steps` of the policy seeded with
// stream_seed(seed, s, ~0) from the initial state.
std::vector<std::vector<mjtNum>> make_start_states(const mjModel* m, const RecordOptions& options);

}  // namespace ebm::rollout
