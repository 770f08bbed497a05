// Recording any MuJoCo scene from C++ with the `ebm.recorder` engine plugin: a pendulum written
// as MJCF with the plugin instance in it, stepped by a plain mj_step loop, recorded into a
// trajectory directory and read back with the record format's reader.
//
//   build/bin/example_record_mjcf [out_dir]      (default record_mjcf_out; must not exist yet)
//
// A host that links the plugin library registers the plugin itself (RegisterPlugin); one that does
// not loads it with mj_loadPluginLibrary or mj_loadAllPluginLibraries("build/plugins"). It writes
// one episode every 500 steps (episode_steps) at every 5th step (decimation), so 2000 steps give 4
// episodes of 100 frames; the program exits 1 otherwise.
#include <mujoco/mujoco.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/trajectory/record_file.h"
#include "plugin/recorder/recorder.h"

namespace {

std::string pendulum_xml(const std::string& out_dir) {
  return R"(<mujoco model="pendulum">
  <option timestep="0.002"/>
  <extension>
    <plugin plugin="ebm.recorder">
      <instance name="rec">
        <config key="path" value=")" +
         out_dir + R"("/>
        <config key="fields" value="time qpos qvel ctrl site:tip"/>
        <config key="decimation" value="5"/>
        <config key="episode_steps" value="500"/>
      </instance>
    </plugin>
  </extension>
  <worldbody>
    <body name="pole" pos="0 0 1">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.03" mass="1"/>
      <site name="tip" pos="0 0 -0.5"/>
    </body>
  </worldbody>
  <actuator><motor name="torque" joint="hinge" ctrlrange="-1 1"/></actuator>
</mujoco>)";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out_dir = argc > 1 ? argv[1] : "record_mjcf_out";
  if (std::filesystem::exists(out_dir)) {
    std::fprintf(stderr, "%s exists; give a new directory\n", out_dir.c_str());
    return 2;
  }
  if (!mjp_getPlugin(ebm::recorder::kPluginName, nullptr)) ebm::recorder::RegisterPlugin();
  char error[1000] = "";
  mjSpec* spec = mj_parseXMLString(pendulum_xml(out_dir).c_str(), nullptr, error, sizeof(error));
  mjModel* m = spec ? mj_compile(spec, nullptr) : nullptr;
  if (!m) {
    std::fprintf(stderr, "cannot load the scene: %s\n", spec ? mjs_getError(spec) : error);
    return 2;
  }
  mjData* d = mj_makeData(m);
  d->qpos[0] = 1.0;  // start 1 rad from hanging straight down
  for (int step = 0; step < 2000; ++step) {
    d->ctrl[0] = 0.5 * std::sin(0.01 * step);  // a slow push back and forth
    mj_step(m, d);
  }
  mj_deleteData(d);  // ends the recorder (an open episode with frames would be written here)
  mj_deleteModel(m);
  mj_deleteSpec(spec);

  const ebm::trajectory::TrajectoryCorpus corpus(out_dir);
  std::printf("%s", corpus.stats_json().c_str());
  const auto tip = ebm::trajectory::field_values(corpus.read(0), corpus.layout(), "site:tip");
  std::printf("first episode: tip at (%.3f, %.3f, %.3f) in its first frame\n", tip[0], tip[1],
              tip[2]);
  const bool ok = corpus.size() == 4 && corpus.total_frames() == 400;
  return ok ? 0 : 1;
}
