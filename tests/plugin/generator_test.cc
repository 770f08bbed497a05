// `ebm.generator` in a scene: loads a trajectory EBM trained here on particles, produces K futures
// of the right shape every N steps, draws them, and refuses a checkpoint of another state layout.
#include "plugin/generator/generator.h"

#include <gtest/gtest.h>
#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "ebm/experiments/trajectory.h"
#include "plugin/recorder/recorder.h"
#include "plugin/rollout/scene.h"
#include "tests/support/mujoco_xml.h"
#include "tests/support/temp_dir.h"

namespace {

using ebm::testing::CompileXml;
const auto kConfig = ebm::testing::PluginConfig;

std::string g_checkpoint;

std::string Scene(int particles, const std::string& config) {
  ebm::rollout::ParticleOptions o;
  o.count = particles;
  std::string xml = ebm::rollout::particles_mjcf(o);
  const std::string ext = "<extension><plugin plugin=\"ebm.generator\"><instance name=\"gen\">" +
                          config + "</instance></plugin></extension>";
  xml.insert(xml.find('\n') + 1, ext);
  xml.insert(xml.find("</mujoco>"), "<sensor><plugin name=\"gen\" instance=\"gen\"/></sensor>");
  return xml;
}

class Generator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ebm::recorder::RegisterPlugin();
    const auto dir = ebm::testing::FreshTempDir("generator");
    ebm::experiments::TrajRunOptions o;
    o.config_path = std::string(EBM_TEST_SOURCE_DIR) + "/configs/trajectories/particles_traj.yaml";
    o.out_dir = dir + "/run";
    o.quiet = true;
    o.eval = false;
    o.overrides = {"device=cpu",
                   "rollout.start_states=6",
                   "rollout.branches=2",
                   "trainer.iterations=20",
                   "baselines.fc_iterations=5",
                   "baselines.mdn_iterations=5"};
    ebm::experiments::run_trajectory(o);
    g_checkpoint = dir + "/run/models/generator.pt";
    ASSERT_TRUE(std::filesystem::exists(g_checkpoint));
  }
};

}  // namespace

TEST_F(Generator, SamplesFuturesEveryNStepsAndDrawsThem) {
  std::string error;
  // particles_traj: decimation 4, history 8, future 20; sample every 40 steps, 3 futures of 25
  // frames (chained windows), 10 Langevin steps.
  mjModel* m = CompileXml(Scene(4, kConfig("checkpoint", g_checkpoint) + kConfig("every", "40") +
                                       kConfig("samples", "3") + kConfig("horizon", "25") +
                                       kConfig("steps", "10") + kConfig("sites", "p0 p1")),
                          &error);
  ASSERT_NE(m, nullptr) << error;
  mjData* d = mj_makeData(m);
  std::vector<float> out(10000);
  int k = 0, frames = 0, dim = 0;
  for (int s = 0; s < 31; ++s) mj_step(m, d);  // 7 frames: the history is not full yet
  EXPECT_EQ(ebm_generator_futures(m, d, out.data(), 10000, &k, &frames, &dim), 0);
  for (int s = 31; s < 32; ++s) mj_step(m, d);  // the 8th frame: first sampling
  const int n = ebm_generator_futures(m, d, out.data(), 10000, &k, &frames, &dim);
  EXPECT_EQ(k, 3);
  EXPECT_EQ(frames, 25);
  EXPECT_EQ(dim, 16);  // qpos[8] + qvel[8]
  ASSERT_EQ(n, 3 * 25 * 16);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(out[i])) << i;
  EXPECT_GT(ebm_generator_last_latency_ms(m, d), 0.0);
  for (int s = 32; s < 32 + 80; ++s) mj_step(m, d);  // two more samplings (every 40 steps)
  mj_forward(m, d);
  EXPECT_EQ(d->sensordata[0], 3.0);
  EXPECT_EQ(ebm_generator_futures(m, d, out.data(), 10, &k, &frames, &dim), -1);  // too small
  // Ghost paths: 3 futures x 24 segments x 2 sites.
  mjvScene scn;
  mjv_defaultScene(&scn);
  mjv_makeScene(m, &scn, 2000);
  mjvOption opt;
  mjv_defaultOption(&opt);
  mjvCamera cam;
  mjv_defaultCamera(&cam);
  mjv_updateScene(m, d, &opt, nullptr, &cam, mjCAT_ALL, &scn);
  int lines = 0;
  for (int i = 0; i < scn.ngeom; ++i) lines += scn.geoms[i].type == mjGEOM_LINE;
  EXPECT_EQ(lines, 3 * 24 * 2);
  mjv_freeScene(&scn);
  mj_deleteData(d);
  mj_deleteModel(m);
}

TEST_F(Generator, RefusesAnotherStateLayoutAndBadAttributes) {
  std::string error;
  EXPECT_EQ(CompileXml(Scene(3, kConfig("checkpoint", g_checkpoint)), &error), nullptr);
  EXPECT_NE(error.find("another state layout"), std::string::npos) << error;
  EXPECT_NE(error.find("attribute 'checkpoint'"), std::string::npos) << error;
  EXPECT_EQ(CompileXml(Scene(4, kConfig("checkpoint", "/nonexistent/generator.pt")), &error),
            nullptr);
  EXPECT_NE(error.find("cannot load"), std::string::npos) << error;
  EXPECT_EQ(
      CompileXml(Scene(4, kConfig("checkpoint", g_checkpoint) + kConfig("samples", "0")), &error),
      nullptr);
  EXPECT_NE(error.find("attribute 'samples'"), std::string::npos) << error;
  EXPECT_EQ(
      CompileXml(Scene(4, kConfig("checkpoint", g_checkpoint) + kConfig("sites", "nosuchsite")),
                 &error),
      nullptr);
  EXPECT_NE(error.find("nosuchsite"), std::string::npos) << error;
}
