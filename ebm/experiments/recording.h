// Recording branched rollouts into a trajectory directory: the config sections that describe a
// recording and the one place that runs it, for `ebm record` and the record stage of `ebm traj`.
#pragma once

#include <string>

#include "ebm/core/config.h"
#include "ebm/dist/data_parallel.h"
#include "plugin/rollout/rollout.h"

namespace ebm::experiments {

// Sections scene, rollout, policy, recorder of a recording or trajectory config.
rollout::RecordOptions record_options(const ConfigSection& root);

// Records `options` into options.out_dir (which must hold no trajectory files yet) with a progress
// display (none when quiet), and writes beside the shards the resolved config (`config_yaml`) as
// config.yaml and a summary as record.json (scene, model hash and sizes, episodes, steps, rates).
// With an active `dp` (a launcher's processes, which all call this) each process records the
// start states of its shard (options.shard_index/count are set from the ranks); the result and
// record.json (written by rank 0) count the episodes of all processes.
rollout::RecordResult record_trajectories(const rollout::RecordOptions& options,
                                          const std::string& config_yaml, bool quiet,
                                          dist::DataParallel* dp = nullptr);

// True when `dir` already holds trajectory files (a recording to reuse, never to add to).
bool has_trajectories(const std::string& dir);

}  // namespace ebm::experiments
