// `ebm.generator`: a MuJoCo engine plugin that loads a trained trajectory EBM
// (models/generator.pt from `ebm traj train`), keeps the recent history of the simulation it runs
// in, every N steps samples K futures with the core's Langevin sampler, exposes them to the host
// (a sensor and a small C API) and draws them as ghost paths of chosen sites in `visualize`.
//
// MJCF:
//   <extension><plugin plugin="ebm.generator"><instance name="gen">
//     <config key="checkpoint" value="runs/hand_traj/models/generator.pt"/>   <!-- required -->
//     <config key="every" value="400"/>    <!-- physics steps between samplings (default: one
//                                               window) -->
//     <config key="samples" value="8"/>    <!-- K futures -->
//     <config key="horizon" value="20"/>   <!-- frames per future (chained windows beyond F) -->
//     <config key="steps" value="0"/>      <!-- Langevin steps (0: as trained) -->
//     <config key="sites" value="robot0:S_fftip robot0:S_thtip"/>  <!-- drawn ghost paths -->
//     <config key="goal_site" value="robot0:S_fftip"/>  <!-- optional goal: this site ... -->
//     <config key="goal_target" value="0.95 0.2 0.3"/>  <!-- ... toward this point (m), or -->
//     <config key="goal_mocap" value="target"/>         <!-- ... toward this mocap body -->
//     <config key="goal_weight" value="1"/>  <!-- goal energy weight, in [0, 2) (stable steps) -->
//   </instance></plugin></extension>
//   optional <sensor><plugin instance="gen"/></sensor>: [samplings so far, last latency in ms].
//
// The history is sampled every `decimation` physics steps (the recording's frame rate, stored in
// the checkpoint) from qpos/qvel/ctrl/act after integration (`advance`); sampling happens there
// too, synchronously, once the history holds H frames. A checkpoint trained on another scene
// (different nq/nv or model hash) is refused at compile time with an error naming the attribute.
//
// With a goal, every sampling composes the learned energy (and its experts) with a goal energy
// (GoalEnergy: the site's position at each window's last frame, linearised at the current state,
// pulled toward the target), so the futures bend toward a target the user moves (goal_mocap: the
// mocap body's position at each sampling, e.g. dragged in MuJoCo's viewer). The target is drawn
// as a small sphere.
#pragma once

#include <mujoco/mujoco.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ebm {
class TrajectoryGenerator;
}

namespace ebm::generator {

inline constexpr char kPluginName[] = "ebm.generator";
inline constexpr char kAttrCheckpoint[] = "checkpoint";
inline constexpr char kAttrEvery[] = "every";
inline constexpr char kAttrSamples[] = "samples";
inline constexpr char kAttrHorizon[] = "horizon";
inline constexpr char kAttrSteps[] = "steps";
inline constexpr char kAttrSites[] = "sites";
inline constexpr char kAttrGoalSite[] = "goal_site";
inline constexpr char kAttrGoalTarget[] = "goal_target";
inline constexpr char kAttrGoalMocap[] = "goal_mocap";
inline constexpr char kAttrGoalWeight[] = "goal_weight";
inline constexpr const char* kAttributes[] = {
    kAttrCheckpoint, kAttrEvery,    kAttrSamples,    kAttrHorizon,   kAttrSteps,
    kAttrSites,      kAttrGoalSite, kAttrGoalTarget, kAttrGoalMocap, kAttrGoalWeight};

// One state feature: `count` values of field (qpos, qvel, ctrl, act) from index `begin`.
struct StateSlice {
  enum class Field { kQpos, kQvel, kCtrl, kAct };
  Field field;
  int begin = 0, count = 0;
};

// An instance's attributes, read once and validated. 0 for every, horizon and steps means "as
// the checkpoint was trained" (one window, the window's future frames, the trained Langevin steps).
struct GeneratorConfig {
  std::string checkpoint;
  long every = 0;
  int samples = 8;
  int horizon = 0;
  int steps = 0;
  std::vector<int> sites;  // site ids whose ghost paths are drawn
  // Goal (none when goal_site < 0): the site pulled toward goal_target, or toward the mocap body
  // goal_mocap (its index in mocap_pos) when that is >= 0.
  int goal_site = -1;
  std::vector<double> goal_target;
  int goal_mocap = -1;
  double goal_weight = 1.0;

  // Null after an mju_warning naming the attribute and what was wrong with it.
  static std::optional<GeneratorConfig> FromModel(const mjModel* m, int instance);
};

class Generator {
 public:
  // Reads the attributes and loads the checkpoint; null after a clear mju_warning.
  static std::unique_ptr<Generator> Create(const mjModel* m, mjData* d, int instance);
  ~Generator();

  void Reset();
  void Compute(const mjModel* m, mjData* d, int instance);  // sensor: samplings, latency
  void Advance(const mjModel* m, mjData* d);
  void Visualize(const mjModel* m, mjData* d, const mjvOption* opt, mjvScene* scn);

  // Latest futures, raw features [K, horizon, D] row-major (empty before the first sampling).
  const std::vector<float>& futures() const { return futures_; }
  int samples() const { return config_.samples; }
  int horizon() const { return config_.horizon; }
  int dim() const { return dim_; }
  long samplings() const { return samplings_; }
  double last_latency_ms() const { return last_latency_ms_; }

 private:
  explicit Generator(GeneratorConfig config);
  // Loads the checkpoint and reads its features against the model; false after a warning.
  bool LoadCheckpoint(const mjModel* m);
  void Sample(const mjModel* m, mjData* d);
  void ReadFeatures(const mjModel* m, const mjData* d, float* out) const;
  // The goal's target now (goal_target, or the mocap body's position).
  std::vector<double> goal_target_now(const mjData* d) const;
  // Sets the goal energy, linearised at d's current state; false after a warning.
  bool set_goal(const mjModel* m, const mjData* d);

  GeneratorConfig config_;  // every and horizon resolved against the checkpoint
  std::unique_ptr<TrajectoryGenerator> model_;
  std::vector<StateSlice> slices_;
  int dim_ = 0, history_len_ = 0, decimation_ = 1;
  std::vector<float> history_;  // ring of the last H frames, oldest first after rotation
  int frames_seen_ = 0;
  long step_ = 0, since_sample_ = 0;
  std::vector<float> futures_;
  long samplings_ = 0;
  double last_latency_ms_ = 0;
  mjData* scratch_ = nullptr;  // forward kinematics of generated states for drawing
};

void RegisterPlugin();

}  // namespace ebm::generator

extern "C" {
// Copies the latest futures of the first ebm.generator instance of d into `out` (capacity
// floats) as [K, frames, D]; sets *k, *frames, *dim. Returns the number of floats written, 0 when
// nothing has been sampled yet, -1 without a generator or when capacity is too small.
int ebm_generator_futures(const mjModel* m, mjData* d, float* out, int capacity, int* k,
                          int* frames, int* dim);
// Milliseconds the last sampling took (-1 without a generator).
double ebm_generator_last_latency_ms(const mjModel* m, mjData* d);
}
