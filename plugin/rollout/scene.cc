#include "plugin/rollout/scene.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "ebm/build_info.h"
#include "ebm/util/markup.h"

namespace ebm::rollout {

std::string default_hand_scene() {
  if (const char* env = std::getenv("EBM_HAND_ASSETS")) {
    return std::string(env) + "/manipulate_block.xml";
  }
  return std::string(build::kHandAssetsDir) + "/manipulate_block.xml";
}

std::string particles_mjcf(const ParticleOptions& o) {
  if (o.count < 1 || o.box <= 0 || o.radius <= 0 || o.radius * 4 > o.box || o.max_force <= 0) {
    throw SceneError(
        "particles: need count >= 1, box > 4 * radius > 0 and max_force > 0 (got count " +
        std::to_string(o.count) + ", box " + std::to_string(o.box) + ", radius " +
        std::to_string(o.radius) + ", max_force " + std::to_string(o.max_force) + ")");
  }
  std::ostringstream x;
  const double b = o.box, t = 0.25;  // thick walls: no tunnelling
  x << "<mujoco model=\"particles\">\n"
    << "  <option timestep=\"0.004\" gravity=\"0 0 0\"/>\n"
    // Spring-damper contacts (stiffness 2000 N/m, damping 2 N s/m, damping ratio about 0.07 for a
    // 0.1 kg particle): particles bounce off the walls and each other nearly elastically.
    << "  <default><geom solref=\"-2000 -2\" friction=\"0 0 0\" condim=\"1\"/></default>\n"
    << "  <worldbody>\n";
  const char* walls[4][2] = {{"0", "1"}, {"0", "-1"}, {"1", "0"}, {"-1", "0"}};
  for (int w = 0; w < 4; ++w) {
    const double sx = std::atof(walls[w][0]), sy = std::atof(walls[w][1]);
    x << "    <geom name=\"wall" << w << "\" type=\"box\" pos=\"" << sx * (b + t) << " "
      << sy * (b + t) << " 0\" size=\"" << (sx != 0 ? t : b + 2 * t) << " "
      << (sy != 0 ? t : b + 2 * t) << " " << 2 * o.radius << "\"/>\n";
  }
  for (int i = 0; i < o.count; ++i) {
    // Start on a grid so that no two overlap.
    const int side = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(o.count))));
    const double step = 2 * b / (side + 1);
    const double px = -b + step * (1 + i % side), py = -b + step * (1 + i / side);
    x << "    <body name=\"p" << i << "\" pos=\"" << px << " " << py << " 0\">\n"
      << "      <joint name=\"p" << i << "x\" type=\"slide\" axis=\"1 0 0\" damping=\"0.5\"/>\n"
      << "      <joint name=\"p" << i << "y\" type=\"slide\" axis=\"0 1 0\" damping=\"0.5\"/>\n"
      << "      <geom type=\"sphere\" size=\"" << o.radius << "\" mass=\"0.1\"/>\n"
      << "      <site name=\"p" << i << "\" size=\"0.01\"/>\n"
      << "    </body>\n";
  }
  x << "  </worldbody>\n  <actuator>\n";
  for (int i = 0; i < o.count; ++i) {
    for (const char* axis : {"x", "y"}) {
      x << "    <motor name=\"p" << i << axis << "\" joint=\"p" << i << axis
        << "\" ctrllimited=\"true\" ctrlrange=\"" << -o.max_force << " " << o.max_force << "\"/>\n";
    }
  }
  x << "  </actuator>\n</mujoco>\n";
  return x.str();
}

namespace {

SpecPtr parse(const std::string& xml, bool is_file, const std::string& what) {
  char error[2048] = "";
  mjSpec* spec = is_file ? mj_parseXML(xml.c_str(), nullptr, error, sizeof(error))
                         : mj_parseXMLString(xml.c_str(), nullptr, error, sizeof(error));
  if (!spec) throw SceneError(what + ": " + error);
  return SpecPtr(spec);
}

}  // namespace

SpecPtr load_scene(const SceneOptions& options) {
  if (options.name == "particles") {
    if (!options.path.empty()) return parse(options.path, true, options.path);
    return parse(particles_mjcf(options.particles), false, "particles scene");
  }
  if (options.name == "mjcf") {
    if (options.path.empty()) throw SceneError("scene 'mjcf' needs a path to an MJCF file");
    return parse(options.path, true, options.path);
  }
  if (options.name != "shadow_hand_block") {
    throw SceneError("unknown scene '" + options.name +
                     "' (expected shadow_hand_block, particles or mjcf)");
  }
  const std::string path = options.path.empty() ? default_hand_scene() : options.path;
  SpecPtr spec = parse(path, true, path);
  mjs_setString(spec->modelname, "shadow_hand_block");
  if (mjsElement* joint = mjs_findElement(spec.get(), mjOBJ_JOINT, "target:joint")) {
    if (mjs_delete(spec.get(), joint) != 0) {
      throw SceneError(path + ": cannot remove the target cube's free joint");
    }
  }
  return spec;
}

void attach_recorder(mjSpec* spec, const std::map<std::string, std::string>& config,
                     const std::string& instance) {
  attach_plugin(spec, "ebm.recorder", config, instance);
}

void attach_plugin(mjSpec* spec, const std::string& plugin,
                   const std::map<std::string, std::string>& config, const std::string& instance) {
  // mjs_setPluginAttributes takes a std::map of the C++ library MuJoCo was built with (libc++ in
  // the wheel), not ours: let MuJoCo's own XML reader build that map in a scratch spec, then hand
  // it over without ever touching it on our side.
  std::string xml = "<mujoco><extension><plugin plugin=\"" + util::escape_markup(plugin) +
                    "\"><instance name=\"" + util::escape_markup(instance) + "\">";
  for (const auto& [key, value] : config) {
    xml += "<config key=\"" + util::escape_markup(key) + "\" value=\"" +
           util::escape_markup(value) + "\"/>";
  }
  xml += "</instance></plugin></extension></mujoco>";
  SpecPtr scratch = parse(xml, false, "recorder instance");
  mjsElement* el = mjs_findElement(scratch.get(), mjOBJ_PLUGIN, instance.c_str());
  mjsPlugin* source = el ? mjs_asPlugin(el) : nullptr;
  if (!source) throw SceneError("cannot build the " + plugin + " instance '" + instance + "'");
  if (mjs_activatePlugin(spec, plugin.c_str()) != 0) {
    throw SceneError("the " + plugin + " plugin is not registered (load its library)");
  }
  mjsPlugin* p = mjs_addPlugin(spec);
  mjs_setString(p->plugin_name, plugin.c_str());
  mjs_setString(p->name, instance.c_str());
  p->active = 1;
  mjs_setPluginAttributes(p, const_cast<void*>(mjs_getPluginAttributes(source)));
}

std::string portable_mjcf(mjSpec* spec) {
  const std::filesystem::path base = mjs_getString(spec->modelfiledir);
  for (mjString* dir : {spec->compiler.meshdir, spec->compiler.texturedir}) {
    const std::filesystem::path d = mjs_getString(dir);
    if (!d.empty() && d.is_relative() && !base.empty())
      mjs_setString(dir, (base / d).lexically_normal().string().c_str());
  }
  char error[1024] = "";
  std::string xml(1 << 16, '\0');
  int need = mj_saveXMLString(spec, xml.data(), static_cast<int>(xml.size()), error, sizeof(error));
  if (need > 0) {
    xml.assign(static_cast<size_t>(need) + 1, '\0');
    need = mj_saveXMLString(spec, xml.data(), static_cast<int>(xml.size()), error, sizeof(error));
  }
  if (need != 0) throw SceneError(std::string("cannot write the scene as MJCF: ") + error);
  xml.resize(std::strlen(xml.c_str()));
  return xml;
}

ModelPtr compile(mjSpec* spec) {
  mjModel* m = mj_compile(spec, nullptr);
  if (!m) throw SceneError(std::string("MuJoCo compile error: ") + mjs_getError(spec));
  return ModelPtr(m);
}

}  // namespace ebm::rollout
