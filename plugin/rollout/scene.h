// Scenes for recorded rollouts: the Shadow Hand turning a block (gymnasium-robotics assets) and
// bouncing particles in a box (the paper's particle data set), built as mjSpec so that an
// `ebm.recorder` instance can be attached to any of them without editing their files.
#pragma once

#include <mujoco/mujoco.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace ebm::rollout {

// Thrown for a scene that cannot be built; the message names the file or the option.
class SceneError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ParticleOptions {
  int count = 4;           // particles
  double box = 1.0;        // half-width of the square box (m)
  double radius = 0.05;    // particle radius (m)
  double max_force = 1.0;  // actuator force limit per axis (N); the policy pushes the particles
};

struct SceneOptions {
  // "shadow_hand_block" (default), "particles", or "mjcf" (any MJCF file given by `path`).
  std::string name = "shadow_hand_block";
  // MJCF file; empty for the built-in scenes (the hand comes from the gymnasium-robotics wheel).
  std::string path;
  ParticleOptions particles;
};

struct SpecDeleter {
  void operator()(mjSpec* s) const { mj_deleteSpec(s); }
};
struct ModelDeleter {
  void operator()(mjModel* m) const { mj_deleteModel(m); }
};
struct DataDeleter {
  void operator()(mjData* d) const { mj_deleteData(d); }
};
using SpecPtr = std::unique_ptr<mjSpec, SpecDeleter>;
using ModelPtr = std::unique_ptr<mjModel, ModelDeleter>;
using DataPtr = std::unique_ptr<mjData, DataDeleter>;

// The MJCF of the particle scene: `count` spheres on planar slide joints (x, y), two motors each,
// elastic walls, no gravity in the plane.
std::string particles_mjcf(const ParticleOptions& options);

// Parses the scene. For the hand, the free joint of the translucent target cube is removed: in
// the Gym environment the goal is set kinematically every step, and in a plain simulation it
// would fall under gravity and collide with nothing, wasting 7 state coordinates.
SpecPtr load_scene(const SceneOptions& options);

// Adds an instance of engine plugin `plugin` named `instance` with these config attributes. The
// plugin must be registered (link or load its library).
void attach_plugin(mjSpec* spec, const std::string& plugin,
                   const std::map<std::string, std::string>& config, const std::string& instance);
// attach_plugin for `ebm.recorder`.
void attach_recorder(mjSpec* spec, const std::map<std::string, std::string>& config,
                     const std::string& instance = "ebm_recorder");

// Compiles; throws SceneError with MuJoCo's message (which carries plugin warnings).
ModelPtr compile(mjSpec* spec);

// The spec as MJCF text that compiles from any folder: its mesh and texture folders, relative to
// the model file, become absolute. The spec must be compiled (compile()) first. Throws SceneError.
std::string portable_mjcf(mjSpec* spec);

// The default hand scene file (EBM_HAND_ASSETS overrides the build-time assets folder).
std::string default_hand_scene();

}  // namespace ebm::rollout
