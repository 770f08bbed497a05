// `ebm.recorder`: a MuJoCo engine plugin that records every (or every k-th) step of the simulation
// it runs in into trajectory record files (datasets/trajectory). No LibTorch: it loads in any
// MuJoCo host (our driver, MuJoCo's Python bindings, `simulate`).
//
// MJCF:
//   <extension><plugin plugin="ebm.recorder"><instance name="rec">
//     <config key="path" value="out/"/>                 <!-- required -->
//     <config key="fields" value="qpos qvel ctrl"/>
//     <config key="decimation" value="1"/>
//     <config key="episode_steps" value="0"/>
//     <config key="flush" value="episode"/>
//   </instance></plugin></extension>
//   optionally <sensor><plugin instance="rec"/></sensor>: one value, the frames of the open
//   episode.
//
// Attributes:
//   path           a file ending in ".ebmtraj" (appended to when it exists with the same model and
//                  layout; every mjData of the process shares it under a lock), or a directory
//                  (created when missing): each mjData writes its own shard
//                  "<model>-<pid>-<n>.ebmtraj" in it, so threads never contend.
//   fields         space- or comma-separated: time qpos qvel act ctrl qacc sensordata mocap_pos
//                  mocap_quat, "sensor:<name>" (one sensor), "site:<name>" (a site's position).
//                  Default "qpos qvel ctrl".
//   decimation     record every k-th physics step (integer >= 1, default 1).
//   episode_steps  physics steps per episode (integer >= 0, default 0 = the episode ends only at
//                  reset, at ebm_recorder_begin_episode/end_episode, or when the mjData is freed).
//   flush          "episode" (fsync after each episode, default), "close" (fsync when the file
//                  closes) or "none". Every episode is written as soon as it ends whatever the
//                  policy, so a killed process loses only its open episode.
//
// Which callback records, and why: a frame must pair the state s_t with the control u_t applied
// from it and the sensor values computed from it. MuJoCo computes sensors inside mj_forward,
// before integration, and calls the plugin's `advance` once per mj_step after integration, when
// qpos/qvel/act/time already hold s_{t+1} while ctrl still holds u_t and sensordata, site_xpos and
// qacc still describe s_t. So the recorder snapshots (time, qpos, qvel, act) in its sensor-stage
// `compute` (position stage, inside the step's mj_forward; RK4's inner evaluations skip sensors)
// and commits the frame in `advance`, taking ctrl and the derived quantities there. `advance` runs
// exactly once per step for every integrator, so a host's extra mj_forward calls never duplicate
// frames. When sensors are disabled, the post-step state kept by the previous `advance` (or set by
// reset / ebm_recorder_begin_episode) serves as s_t.
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/trajectory/record_file.h"

namespace ebm::recorder {

inline constexpr char kPluginName[] = "ebm.recorder";
inline constexpr char kAttrPath[] = "path";
inline constexpr char kAttrFields[] = "fields";
inline constexpr char kAttrDecimation[] = "decimation";
inline constexpr char kAttrEpisodeSteps[] = "episode_steps";
inline constexpr char kAttrFlush[] = "flush";
inline constexpr const char* kAttributes[] = {kAttrPath, kAttrFields, kAttrDecimation,
                                              kAttrEpisodeSteps, kAttrFlush};

// One field of a frame: where its values come from.
struct FieldSource {
  enum class Kind {
    kTime,
    kQpos,
    kQvel,
    kAct,
    kCtrl,
    kQacc,
    kSensordata,
    kMocapPos,
    kMocapQuat,
    kSensor,
    kSite
  };
  Kind kind;
  std::string name;  // the field name in the file
  int size = 0;
  int index = 0;  // sensor adr (kSensor) or site id (kSite)
  std::vector<std::string> element_names;
};

// Parses the `fields` attribute against a model. On error returns nullopt and sets `error`.
std::optional<std::vector<FieldSource>> parse_fields(const mjModel* m, const std::string& text,
                                                     std::string* error);

// An instance's attributes (see the list above), read once and validated.
struct RecorderConfig {
  std::string path;
  bool directory_mode = false;  // path is a directory: each mjData writes its own shard
  std::vector<FieldSource> fields;
  int decimation = 1;
  long episode_steps = 0;
  trajectory::SyncPolicy sync = trajectory::SyncPolicy::kEpisode;

  // Null after an mju_warning naming the attribute and what was wrong with it.
  static std::optional<RecorderConfig> FromModel(const mjModel* m, int instance);
};

struct EpisodeMeta {
  uint64_t episode_id = 0;
  uint64_t seed = 0;
  uint32_t start_state_id = 0;
  uint32_t branch_id = 0;
  bool explicit_id = false;
};

class SharedWriter;

class Recorder {
 public:
  // Reads and validates the instance's attributes; returns null after a clear mju_warning.
  // Creates no file: files open when the first episode is written (the compiler instantiates
  // plugins to validate them).
  static std::unique_ptr<Recorder> Create(const mjModel* m, mjData* d, int instance);
  ~Recorder();

  void Reset();                               // ends the open episode, snapshots the state
  void Compute(const mjModel* m, mjData* d);  // sensor stage: snapshot of s_t
  void Advance(const mjModel* m, mjData* d);  // after integration: commit the frame
  // Ends the open episode (written if it has frames) and sets the next one's metadata.
  void BeginEpisode(const EpisodeMeta& meta);
  void EndEpisode();

  int frames_in_episode() const;
  uint64_t episodes_written() const { return episodes_written_; }
  uint64_t episodes_lost() const { return episodes_lost_; }

 private:
  Recorder(const mjModel* m, mjData* d, int instance, RecorderConfig config);
  void Snapshot();
  void Flush();  // writes the open episode

  const mjModel* m_;
  mjData* d_;
  int instance_;
  const RecorderConfig config_;
  trajectory::FileHeader header_;
  size_t frame_size_ = 0;

  std::vector<double> snap_;  // time, qpos, qvel, act of s_t
  long step_in_episode_ = 0;
  trajectory::Episode episode_;  // frames of the open episode; reused (keeps its capacity)
  double episode_start_time_ = 0;
  EpisodeMeta meta_;
  std::shared_ptr<SharedWriter> writer_;
  uint64_t episodes_written_ = 0;
  uint64_t episodes_lost_ = 0;
  bool warned_write_ = false;
  bool validation_only_ = false;  // the compiler's test instance
};

// Registers the plugin with MuJoCo (done by the library's load-time initialiser).
void RegisterPlugin();

}  // namespace ebm::recorder

// A small C API for hosts that link the plugin library (the rollout driver). Each function acts
// on every ebm.recorder instance of `d` and returns how many it found (0: none in this model).
extern "C" {
// Ends the open episode (writing it if it has frames), snapshots the current state as the start
// of the next one and sets its metadata.
int ebm_recorder_begin_episode(const mjModel* m, mjData* d, uint64_t episode_id, uint64_t seed,
                               uint32_t start_state_id, uint32_t branch_id);
// Ends the open episode, writing it if it has frames.
int ebm_recorder_end_episode(const mjModel* m, mjData* d);
// Sum over the instances of episodes written so far (and, if `lost` is not null, episodes lost
// to write errors).
uint64_t ebm_recorder_episodes_written(const mjModel* m, mjData* d, uint64_t* lost);
}
