// Recording branched rollouts into a trajectory directory: the config sections that describe a
// recording and the one place that runs it, for `ebm record` and the record stage of `ebm traj`.
#pragma once

#include <string>

#include "ebm/core/config.h"
#include "plugin/rollout/rollout.h"

namespace ebm::experiments {

// Sections scene, rollout, policy, recorder of a recording or trajectory config.
rollout::RecordOptions record_options(const ConfigSection& root);

// Records `options` into options.out_dir (which must hold no trajectory files yet) with a progress
// display (none when quiet), and writes beside the shards the resolved config (`config_yaml`) as
// config.yaml and a summary as record.json (scene, model hash and sizes, episodes, steps, rates).
rollout::RecordResult record_trajectories(const rollout::RecordOptions& options,
                                          const std::string& config_yaml, bool quiet);

// True when `dir` already holds trajectory files (a recording to reuse, never to add to).
bool has_trajectories(const std::string& dir);

}  // namespace ebm::experiments
