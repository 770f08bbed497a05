#include "plugin/rollout/rollout.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "datasets/trajectory/record_file.h"
#include "datasets/trajectory/split.h"
#include "plugin/common/plugin_util.h"
#include "plugin/recorder/recorder.h"

namespace ebm::rollout {
namespace fs = std::filesystem;

uint64_t stream_seed(uint64_t seed, uint64_t a, uint64_t b) {
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ a) ^ b);
}

OUPolicy::OUPolicy(const mjModel* m, const PolicyOptions& options, uint64_t seed)
    : options_(options), rng_(seed), u_(m->nu, 0.0), mid_(m->nu, 0.0), half_(m->nu, 1.0) {
  for (int i = 0; i < m->nu; ++i) {
    if (m->actuator_ctrllimited[i]) {
      const double lo = m->actuator_ctrlrange[2 * i], hi = m->actuator_ctrlrange[2 * i + 1];
      mid_[i] = 0.5 * (lo + hi);
      half_[i] = 0.5 * (hi - lo);
    }
  }
}

void OUPolicy::reset(const mjModel* m, const mjData* d) {
  for (int i = 0; i < m->nu; ++i) {
    u_[i] = half_[i] > 0 ? std::clamp((d->ctrl[i] - mid_[i]) / half_[i], -1.0, 1.0) : 0.0;
  }
}

void OUPolicy::act(const mjModel* m, mjData* d, long step) {
  if (step % options_.action_repeat == 0) {
    const double dt = options_.action_repeat * m->opt.timestep;
    for (int i = 0; i < m->nu; ++i) {
      u_[i] += -options_.theta * u_[i] * dt + options_.sigma * std::sqrt(dt) * normal_(rng_);
      u_[i] = std::clamp(u_[i], -1.0, 1.0);
    }
  }
  for (int i = 0; i < m->nu; ++i) d->ctrl[i] = mid_[i] + half_[i] * u_[i];
}

namespace {

constexpr int kStateSig = mjSTATE_INTEGRATION;

}  // namespace

long episode_steps_of(const RecordOptions& o, int start_state) {
  if (o.held_out_episode_steps > 0 &&
      trajectory::is_validation_state(static_cast<uint32_t>(start_state), o.held_out_fraction)) {
    return o.held_out_episode_steps;
  }
  return o.episode_steps;
}

namespace {

void check_options(const RecordOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("record options: " + what);
  };
  need(o.threads >= 1, "threads must be >= 1");
  need(o.start_states >= 1, "start_states must be >= 1");
  need(o.branches >= 1, "branches must be >= 1");
  need(o.warmup_steps >= 0, "warmup_steps must be >= 0");
  need(o.episode_steps >= 1, "episode_steps must be >= 1");
  need(o.prefix_steps >= 0 && o.prefix_steps < o.episode_steps,
       "prefix_steps must be >= 0 and < episode_steps");
  need(o.held_out_episode_steps == 0 || o.held_out_episode_steps > o.prefix_steps,
       "held_out_episode_steps must be 0 or > prefix_steps");
  need(o.held_out_fraction >= 0 && o.held_out_fraction <= 1, "held_out_fraction must be in [0, 1]");
  need(o.decimation >= 1, "decimation must be >= 1");
  need(o.policy.action_repeat >= 1, "policy.action_repeat must be >= 1");
  need(o.policy.theta >= 0 && o.policy.sigma >= 0, "policy theta and sigma must be >= 0");
  need(!o.out_dir.empty(), "an output directory is required");
  need(o.shard_count >= 1 && o.shard_index >= 0 && o.shard_index < o.shard_count,
       "shard_index must be in [0, shard_count)");
}

// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first exception.
template <typename Fn>
void parallel_for(int threads, int64_t n, Fn& fn, const std::function<void(int64_t)>& tick = {}) {
  std::atomic<int64_t> next{0}, done{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&](int thread) {
    try {
      fn.begin(thread);
      for (int64_t i; (i = next++) < n;) {
        fn.run(thread, i);
        ++done;
      }
      fn.end(thread);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  if (tick) {
    while (done < n && !error) {
      tick(done);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::lock_guard<std::mutex> lock(error_mu);
      if (error) break;
    }
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  if (tick) tick(done);
}

}  // namespace

std::vector<std::vector<mjtNum>> make_start_states(const mjModel* m, const RecordOptions& o) {
  check_options(o);
  std::vector<std::vector<mjtNum>> states(o.start_states);
  struct Job {
    const mjModel* m;
    const RecordOptions& o;
    std::vector<std::vector<mjtNum>>& states;
    std::vector<DataPtr> data;
    void begin(int t) { data[t].reset(mj_makeData(m)); }
    void run(int t, int64_t s) {
      mjData* d = data[t].get();
      mj_resetData(m, d);
      OUPolicy policy(m, o.policy, stream_seed(o.seed, static_cast<uint64_t>(s), ~0ull));
      policy.reset(m, d);
      for (long k = 0; k < o.warmup_steps; ++k) {
        policy.act(m, d, k);
        mj_step(m, d);
      }
      states[s].resize(mj_stateSize(m, kStateSig));
      mj_getState(m, d, states[s].data(), kStateSig);
    }
    void end(int t) { data[t].reset(); }
  } job{m, o, states, std::vector<DataPtr>(o.threads)};
  parallel_for(std::min<int64_t>(o.threads, o.start_states), o.start_states, job);
  return states;
}

namespace {

// Refuses an output directory that already holds trajectory files (recordings are never mixed),
// creates it and registers the recorder plugin once per process.
void prepare_out_dir(const RecordOptions& o) {
  std::error_code ec;
  if (o.shard_count == 1 && fs::exists(o.out_dir, ec)) {
    for (const auto& e : fs::directory_iterator(o.out_dir, ec)) {
      if (e.path().extension() == trajectory::kFileSuffix) {
        throw std::runtime_error(o.out_dir + ": already holds trajectory files (" +
                                 e.path().filename().string() +
                                 "); choose a new output directory, recordings are never mixed");
      }
    }
  }
  fs::create_directories(o.out_dir);
  if (mjp_getPlugin(recorder::kPluginName, nullptr) == nullptr) recorder::RegisterPlugin();
}

// Attaches an ebm.recorder writing into o.out_dir to `spec` and compiles it; throws when the
// recorder changed the state size of `plain` (the start states must fit both models).
ModelPtr compile_with_recorder(mjSpec* spec, const RecordOptions& o, const mjModel* plain) {
  attach_recorder(spec, {{recorder::kAttrPath, o.out_dir},
                         {recorder::kAttrFields, o.fields},
                         {recorder::kAttrDecimation, std::to_string(o.decimation)},
                         {recorder::kAttrEpisodeSteps, "0"},
                         {recorder::kAttrFlush, o.flush}});
  ModelPtr model = compile(spec);
  if (mj_stateSize(model.get(), kStateSig) != mj_stateSize(plain, kStateSig)) {
    throw std::runtime_error(
        "the recorder changed the state size of the scene; cannot reuse start states");
  }
  return model;
}

// The episodes of record_rollouts for parallel_for: job j is branch j % B of this shard's
// (j / B)-th start state; each thread records into its own mjData (one shard) and counts what it
// wrote.
struct RecordJob {
  const mjModel* m;
  const RecordOptions& o;
  const std::vector<std::vector<mjtNum>>& starts;
  std::vector<DataPtr> data;
  std::vector<uint64_t> written, lost;
  void begin(int t) {
    data[t].reset(mj_makeData(m));
    if (!data[t]) throw std::runtime_error("mj_makeData failed (out of memory?)");
  }
  void run(int t, int64_t job) {
    mjData* d = data[t].get();
    const int s = o.shard_index + static_cast<int>(job / o.branches) * o.shard_count;
    const int b = static_cast<int>(job % o.branches);
    const uint64_t episode = static_cast<uint64_t>(s) * o.branches + b;
    const uint64_t seed = stream_seed(o.seed, static_cast<uint64_t>(s), static_cast<uint64_t>(b));
    mj_resetData(m, d);
    mj_setState(m, d, starts[s].data(), kStateSig);
    mj_forward(m, d);
    ebm_recorder_begin_episode(m, d, episode, seed, static_cast<uint32_t>(s),
                               static_cast<uint32_t>(b));
    long k = 0;
    if (o.prefix_steps > 0) {  // the shared history of all branches of this start state
      OUPolicy common(m, o.policy, stream_seed(o.seed, static_cast<uint64_t>(s), ~1ull));
      common.reset(m, d);
      for (; k < o.prefix_steps; ++k) {
        common.act(m, d, k);
        mj_step(m, d);
      }
    }
    // The branch's own actions: a new target at its first step, so branches diverge exactly
    // where the shared prefix ends.
    OUPolicy policy(m, o.policy, seed);
    policy.reset(m, d);
    for (const long start = k, end = episode_steps_of(o, s); k < end; ++k) {
      policy.act(m, d, k - start);
      mj_step(m, d);
    }
    ebm_recorder_end_episode(m, d);
  }
  void end(int t) {
    written[t] = ebm_recorder_episodes_written(m, data[t].get(), &lost[t]);
    data[t].reset();  // closes the shard
  }
};

// Adds up the episodes the threads of `job` wrote and lost into `result`; throws when any of the
// `total` episodes was lost.
void count_episodes(const RecordJob& job, int64_t total, const RecordOptions& o,
                    RecordResult* result) {
  for (size_t t = 0; t < job.written.size(); ++t) {
    result->episodes += job.written[t];
    result->episodes_lost += job.lost[t];
  }
  for (int s = o.shard_index; s < o.start_states; s += o.shard_count) {
    result->physics_steps += static_cast<uint64_t>(o.branches) * episode_steps_of(o, s);
  }
  if (result->episodes_lost > 0) {
    throw std::runtime_error(std::to_string(result->episodes_lost) + " of " +
                             std::to_string(total) + " episodes could not be written to " +
                             o.out_dir + " (see the warning above)");
  }
}

}  // namespace

RecordResult record_rollouts(const RecordOptions& o,
                             const std::function<void(int64_t, int64_t)>& progress) {
  check_options(o);
  prepare_out_dir(o);

  // The start states come from a model without the recorder: warm-up steps are not recorded.
  SpecPtr plain_spec = load_scene(o.scene);
  ModelPtr plain = compile(plain_spec.get());
  const auto starts = make_start_states(plain.get(), o);

  SpecPtr spec = load_scene(o.scene);
  ModelPtr model = compile_with_recorder(spec.get(), o, plain.get());
  const mjModel* m = model.get();

  RecordResult result;
  result.model_hash = plugin::model_hash(m);
  result.model_name = m->names;
  result.nq = m->nq, result.nv = m->nv, result.nu = m->nu;
  const int64_t my_starts = (o.start_states - o.shard_index + o.shard_count - 1) / o.shard_count;
  const int64_t total = my_starts * o.branches;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(o.threads, total)));
  RecordJob job{m,
                o,
                starts,
                std::vector<DataPtr>(threads),
                std::vector<uint64_t>(threads, 0),
                std::vector<uint64_t>(threads, 0)};

  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(threads, total, job, [&](int64_t done) {
    if (progress) progress(done, total);
  });
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  count_episodes(job, total, o, &result);
  return result;
}

}  // namespace ebm::rollout
