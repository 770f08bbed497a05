// What every ebm engine plugin needs of MuJoCo beyond its own logic (no LibTorch): reading the
// instance's attributes with a clear warning on a bad value, the instance lifecycle callbacks,
// finding the instances of a plugin in an mjData, filling the plugin's sensors, and the model hash
// that ties recorded data and trained models to a scene.
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ebm::plugin {

// Reads one instance's attributes (`<config key=... value=...>`). Each reader returns nullopt
// after an mju_warning "<plugin>: attribute '<key>': <what was expected, what was found>".
class Attributes {
 public:
  Attributes(const mjModel* m, int instance, const char* plugin_name)
      : m_(m), instance_(instance), plugin_name_(plugin_name) {}

  // The attribute's text; empty when it is not given.
  std::string text(const char* key) const;
  // An integer in [min, max]; `fallback` when the attribute is not given.
  std::optional<long> integer(const char* key, long min, long max, long fallback) const;
  // `count` finite real numbers separated by spaces, each in [min, max]; `fallback` when the
  // attribute is not given.
  std::optional<std::vector<double>> numbers(const char* key, size_t count, double min, double max,
                                             std::vector<double> fallback) const;
  // Warns about `key` (always returns nullopt, for `return attributes.fail(...)`).
  std::nullopt_t fail(const char* key, const std::string& what) const;

 private:
  const mjModel* m_;
  int instance_;
  const char* plugin_name_;
};

// mju_warning "<plugin>: attribute '<key>': <what>": how every plugin refuses a bad attribute.
void warn_attribute(const char* plugin_name, const char* key, const std::string& what);

// The object's name, or "" when it has none.
std::string name_of(const mjModel* m, int type, int id);

// 64-bit FNV-1a hash of what makes two compiled models interchangeable for recorded data: sizes,
// joint structure and ranges, body tree and masses, geometry, actuators, timestep and names. Not
// the plugin attributes (an output path must not change the hash) nor sensors (plugins add their
// own) nor mocap bodies with their geoms and sites (a target added at the end of a scene).
uint64_t model_hash(const mjModel* m);

// The Jacobian of site `site`'s world position with respect to the qpos coordinates, [3 x nq]
// row-major, at d's current positions (runs mj_kinematics and mj_comPos on d). Hinge and slide
// joints and the position of free joints move their qpos coordinate with one dof each; quaternion
// coordinates (ball and free joints) get 0.
std::vector<mjtNum> site_jacobian_qpos(const mjModel* m, mjData* d, int site);

// The plugin object an instance of `plugin_name` keeps in d->plugin_data.
template <typename T>
T* instance_data(const mjData* d, int instance) {
  return reinterpret_cast<T*>(d->plugin_data[instance]);
}

// Calls fn(T*) on every initialised instance of `plugin_name` in d; returns how many.
template <typename T, typename Fn>
int for_each_instance(const mjModel* m, mjData* d, const char* plugin_name, Fn fn) {
  int found = 0;
  for (int i = 0; i < m->nplugin; ++i) {
    const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[i]);
    if (p && std::strcmp(p->name, plugin_name) == 0 && d->plugin_data[i]) {
      fn(instance_data<T>(d, i));
      ++found;
    }
  }
  return found;
}

// Fills the lifecycle callbacks of `plugin` for a plugin class T (MuJoCo's first-party style: a
// static `std::unique_ptr<T> Create(const mjModel*, mjData*, int instance)` that returns null
// after a warning, and `Reset()`): no plugin state, init keeps the created object in
// d->plugin_data (a null one fails the compile), destroy deletes it, reset calls Reset.
template <typename T>
void set_instance_lifecycle(mjpPlugin& plugin) {
  plugin.nstate = +[](const mjModel*, int) { return 0; };
  plugin.init = +[](const mjModel* m, mjData* d, int instance) {
    std::unique_ptr<T> object = T::Create(m, d, instance);
    if (!object) return -1;
    d->plugin_data[instance] = reinterpret_cast<uintptr_t>(object.release());
    return 0;
  };
  plugin.destroy = +[](mjData* d, int instance) {
    delete instance_data<T>(d, instance);
    d->plugin_data[instance] = 0;
  };
  plugin.reset = +[](const mjModel*, mjtNum*, void* data, int) {
    if (data) static_cast<T*>(data)->Reset();
  };
}

// Writes values[0..n) into every sensor of `instance` (as many as each sensor's dimension holds).
void fill_sensors(const mjModel* m, mjData* d, int instance, const mjtNum* values, int n);

}  // namespace ebm::plugin
