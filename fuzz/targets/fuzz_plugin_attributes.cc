// The plugins' attributes as MuJoCo's compiler hands them over. Each input gives attribute values,
// one per line: the first five for an `ebm.recorder` instance (plugin/recorder/recorder.h, in
// kAttributes order), the next ten for an `ebm.generator` instance; a missing line leaves the
// attribute out. Compiling the scene instantiates the real recorder (RecorderConfig::FromModel,
// then Recorder::Create, which opens no file for writing) and a stand-in generator that runs the
// real GeneratorConfig::FromModel (the real plugin would then load a checkpoint: the archive
// readers are fuzzed by fuzz_checkpoint_metadata). A bad value must end in a refused compile;
// a value that parses must lie in its documented range; nothing may crash. The compiler's
// instance only validates: it opens no file for writing, whatever the path.
#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ebm/util/markup.h"
#include "plugin/generator/generator.h"
#include "plugin/recorder/recorder.h"

namespace {

constexpr char kScene[] = R"(
  <worldbody>
    <body name="arm">
      <joint name="hinge" type="hinge" range="-1 1" limited="true"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
      <site name="tip" pos="0.2 0 0"/>
    </body>
    <body name="target" mocap="true"><geom type="sphere" size="0.01" contype="0"/></body>
  </worldbody>
  <actuator><motor name="m" joint="hinge"/></actuator>
  <sensor><jointpos name="jp" joint="hinge"/></sensor>
)";

void quiet(const char*) {}

// The stand-in `ebm.generator`: the real attribute list and parser, no checkpoint.
void register_generator_attributes() {
  mjpPlugin plugin;
  mjp_defaultPlugin(&plugin);
  plugin.name = ebm::generator::kPluginName;
  plugin.capabilityflags |= mjPLUGIN_SENSOR;
  plugin.nattribute = sizeof(ebm::generator::kAttributes) / sizeof(ebm::generator::kAttributes[0]);
  plugin.attributes = ebm::generator::kAttributes;
  plugin.nstate = +[](const mjModel*, int) { return 0; };
  plugin.nsensordata = +[](const mjModel*, int, int) { return 2; };
  plugin.needstage = mjSTAGE_POS;
  plugin.init = +[](const mjModel* m, mjData*, int instance) {
    const auto c = ebm::generator::GeneratorConfig::FromModel(m, instance);
    if (!c) return -1;
    if (c->checkpoint.empty() || c->every < 0 || c->samples < 1 || c->samples > 1024 ||
        c->horizon < 0 || c->horizon > 100000 || c->steps < 0) {
      std::abort();  // parsed, but outside the documented ranges
    }
    // A goal: a real site, a target of 3 finite numbers or a real mocap body, weight in [0, 2).
    const bool goal = c->goal_site >= 0;
    if ((goal &&
         (c->goal_site >= m->nsite || !(c->goal_weight >= 0 && c->goal_weight < 2) ||
          (c->goal_target.size() == 3) == (c->goal_mocap >= 0) || c->goal_mocap >= m->nmocap)) ||
        (!goal && (!c->goal_target.empty() || c->goal_mocap >= 0))) {
      std::abort();
    }
    for (double x : c->goal_target) {
      if (!std::isfinite(x)) std::abort();
    }
    return 0;
  };
  plugin.compute = +[](const mjModel*, mjData*, int, int) {};
  mjp_registerPlugin(&plugin);
}

// `value` as an XML attribute: MJCF cannot carry control characters, the rest is escaped.
std::string xml_escaped(std::string value) {
  value.erase(std::remove_if(value.begin(), value.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
              value.end());
  return ebm::util::escape_markup(value);
}

std::string instance(const char* plugin, const char* const* keys, size_t count,
                     const std::vector<std::string>& values, size_t first) {
  std::string xml = std::string("<plugin plugin=\"") + plugin + "\"><instance name=\"i\">";
  for (size_t k = 0; k < count && first + k < values.size(); ++k) {
    xml += std::string("<config key=\"") + keys[k] + "\" value=\"" +
           xml_escaped(values[first + k]) + "\"/>";
  }
  return xml + "</instance></plugin>";
}

void compile(const std::string& xml) {
  mjSpec* spec = mj_parseXMLString(xml.c_str(), nullptr, nullptr, 0);
  if (!spec) return;
  mjModel* m = mj_compile(spec, nullptr);
  if (m) mj_deleteModel(m);
  mj_deleteSpec(spec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mju_user_warning = quiet;
  ebm::recorder::RegisterPlugin();
  register_generator_attributes();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> values(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n')
      values.emplace_back();
    else
      values.back() += static_cast<char>(data[i]);
  }
  using ebm::recorder::kAttributes;
  const size_t recorder_keys = sizeof(kAttributes) / sizeof(kAttributes[0]);
  const size_t generator_keys =
      sizeof(ebm::generator::kAttributes) / sizeof(ebm::generator::kAttributes[0]);
  compile("<mujoco model=\"fuzz\"><extension>" +
          instance(ebm::recorder::kPluginName, kAttributes, recorder_keys, values, 0) +
          "</extension>" + kScene + "</mujoco>");
  compile("<mujoco model=\"fuzz\"><extension>" +
          instance(ebm::generator::kPluginName, ebm::generator::kAttributes, generator_keys, values,
                   recorder_keys) +
          "</extension>" + kScene + "</mujoco>");
  return 0;
}
