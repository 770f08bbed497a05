// `ebm.recorder` inside MuJoCo: recorded frames equal a plain mj_step loop bit for bit (as
// float32), decimation and episode lengths, bad attributes refused by name, reset ends an
// episode, threads write separate shards, and a SIGKILLed recording keeps every complete episode.
#include "plugin/recorder/recorder.h"

#include <gtest/gtest.h>
#include <mujoco/mujoco.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "datasets/trajectory/record_file.h"
#include "plugin/common/plugin_util.h"
#include "plugin/rollout/scene.h"
#include "tests/support/mujoco_xml.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using ebm::rollout::DataPtr;
using ebm::rollout::ModelPtr;
using ebm::trajectory::TrajectoryCorpus;

namespace {

// Two actuated links that fall onto a floor, and a free ball that bounces: contacts, limits,
// two actuator types.
constexpr char kBody[] = R"(
  <option timestep="0.002"/>
  <worldbody>
    <geom type="plane" size="2 2 0.1"/>
    <body pos="0 0 0.3">
      <joint name="hinge" type="hinge" axis="0 1 0" range="-1 1" limited="true"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
      <body pos="0.2 0 0">
        <joint name="hinge2" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
        <site name="tip" pos="0.2 0 0"/>
      </body>
    </body>
    <body pos="0.3 0 0.5"><freejoint name="ball"/><geom type="sphere" size="0.05"/></body>
  </worldbody>
  <actuator>
    <motor name="m" joint="hinge" ctrllimited="true" ctrlrange="-1 1"/>
    <position name="p" joint="hinge2" kp="5"/>
  </actuator>
  <sensor><jointpos name="jp" joint="hinge2"/></sensor>)";

std::string Xml(const std::string& config, bool with_plugin = true, bool with_sensor = false) {
  std::string xml = "<mujoco model=\"toy\">";
  if (with_plugin) {
    xml += "<extension><plugin plugin=\"ebm.recorder\"><instance name=\"rec\">" + config +
           "</instance></plugin></extension>";
  }
  std::string body = kBody;
  if (with_sensor)
    body.replace(body.find("</sensor>"), 0, "<plugin name=\"frames\" instance=\"rec\"/>");
  return xml + body + "</mujoco>";
}

ModelPtr Compile(const std::string& xml, std::string* error = nullptr) {
  return ModelPtr(ebm::testing::CompileXml(xml, error));
}

const auto kConfig = ebm::testing::PluginConfig;

// Deterministic controls for step k.
void Controls(const mjModel* m, mjData* d, int k) {
  for (int i = 0; i < m->nu; ++i) d->ctrl[i] = 0.8 * std::sin(0.05 * k + i);
}

}  // namespace

TEST(Recorder, FramesEqualAPlainStepLoop) {
  const auto dir = ebm::testing::FreshTempDir("rec_equal");
  const std::string path = dir + "/run.ebmtraj";
  ModelPtr m = Compile(
      Xml(kConfig("path", path) + kConfig("fields", "time qpos qvel ctrl sensordata site:tip")));
  ASSERT_TRUE(m);
  ModelPtr plain = Compile(Xml("", /*with_plugin=*/false));
  ASSERT_TRUE(plain);
  EXPECT_EQ(ebm::plugin::model_hash(m.get()), ebm::plugin::model_hash(plain.get()));
  const int n = 300;
  {
    DataPtr d(mj_makeData(m.get()));
    for (int k = 0; k < n; ++k) {
      Controls(m.get(), d.get(), k);
      mj_step(m.get(), d.get());
      if (k % 50 == 0) mj_forward(m.get(), d.get());  // a host's extra forward adds no frame
    }
  }  // freeing the mjData ends the episode
  TrajectoryCorpus c(path);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c.episodes()[0].num_frames, static_cast<uint32_t>(n));
  const auto e = c.read(0);
  const auto& layout = c.layout();
  DataPtr d(mj_makeData(plain.get()));
  const mjModel* p = plain.get();
  for (int k = 0; k < n; ++k) {
    Controls(p, d.get(), k);
    // The frame of step k: the state it starts from, its control, the sensors computed from it.
    mj_forward(p, d.get());
    const float* f = e.data().data() + k * layout.frame_size();
    ASSERT_EQ(f[*layout.offset("time")], static_cast<float>(d->time)) << "step " << k;
    for (int i = 0; i < p->nq; ++i)
      ASSERT_EQ(f[*layout.offset("qpos") + i], static_cast<float>(d->qpos[i])) << k;
    for (int i = 0; i < p->nv; ++i)
      ASSERT_EQ(f[*layout.offset("qvel") + i], static_cast<float>(d->qvel[i])) << k;
    for (int i = 0; i < p->nu; ++i)
      ASSERT_EQ(f[*layout.offset("ctrl") + i], static_cast<float>(d->ctrl[i])) << k;
    ASSERT_EQ(f[*layout.offset("sensordata")], static_cast<float>(d->sensordata[0])) << k;
    for (int i = 0; i < 3; ++i)
      ASSERT_EQ(f[*layout.offset("site:tip") + i], static_cast<float>(d->site_xpos[i])) << k;
    mj_step(p, d.get());
  }
  // The ball moved and bounced, the links moved: the comparison was not between constants.
  EXPECT_GT(std::abs(e.data(static_cast<int>((n - 1) * layout.frame_size() + 8)) - e.data(8)),
            0.05);
  EXPECT_EQ(c.header().fields(1).element_names(0), "hinge");
  EXPECT_EQ(c.header().fields(3).element_names(1), "p");
}

TEST(Recorder, SameFramesWithSensorsDisabled) {
  // Without the sensor stage the snapshot comes from the previous step's end: same frames.
  const auto dir = ebm::testing::FreshTempDir("rec_nosensor");
  ModelPtr m = Compile(Xml(kConfig("path", dir + "/a.ebmtraj")));
  ModelPtr m2 = Compile(Xml(kConfig("path", dir + "/b.ebmtraj")));
  ASSERT_TRUE(m && m2);
  m2->opt.disableflags |= mjDSBL_SENSOR;
  for (const mjModel* model : {m.get(), m2.get()}) {
    DataPtr d(mj_makeData(model));
    for (int k = 0; k < 100; ++k) {
      Controls(model, d.get(), k);
      mj_step(model, d.get());
    }
  }
  const auto a = TrajectoryCorpus(dir + "/a.ebmtraj").read(0);
  const auto b = TrajectoryCorpus(dir + "/b.ebmtraj").read(0);
  ASSERT_EQ(a.data_size(), b.data_size());
  for (int i = 0; i < a.data_size(); ++i) ASSERT_EQ(a.data(i), b.data(i)) << i;
}

TEST(Recorder, DecimationEpisodesResetAndSensor) {
  const auto dir = ebm::testing::FreshTempDir("rec_decim");
  ModelPtr m = Compile(Xml(kConfig("path", dir) + kConfig("fields", "time qpos") +
                               kConfig("decimation", "5") + kConfig("episode_steps", "50") +
                               kConfig("flush", "none"),
                           true, /*with_sensor=*/true));
  ASSERT_TRUE(m);
  ASSERT_EQ(m->nsensordata, 2);
  {
    DataPtr d(mj_makeData(m.get()));
    for (int k = 0; k < 120; ++k) mj_step(m.get(), d.get());  // 2 full episodes + 20 steps
    EXPECT_EQ(d->sensordata[1], 4.0);  // frames of the open episode, seen in the last forward
    mj_resetData(m.get(), d.get());    // ends the third episode: 4 frames
    for (int k = 0; k < 7; ++k) mj_step(m.get(), d.get());
  }  // the fourth: 2 frames
  TrajectoryCorpus c(dir);
  EXPECT_EQ(c.header().decimation(), 5u);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c.episodes()[0].num_frames, 10u);
  EXPECT_EQ(c.episodes()[1].num_frames, 10u);
  EXPECT_EQ(c.episodes()[2].num_frames, 4u);
  EXPECT_EQ(c.episodes()[3].num_frames, 2u);
  const auto e1 = c.read(1);
  // Episode 2 starts at step 50; frames every 5 steps of 0.002 s.
  EXPECT_FLOAT_EQ(e1.data(0), 50 * 0.002f);
  EXPECT_FLOAT_EQ(e1.data(static_cast<int>(c.layout().frame_size())), 55 * 0.002f);
  EXPECT_FLOAT_EQ(static_cast<float>(e1.start_time()), 50 * 0.002f);
  EXPECT_FLOAT_EQ(c.read(3).data(0), 0.0f);  // after the reset
}

TEST(Recorder, BadAttributesAreRefusedByName) {
  const auto dir = ebm::testing::FreshTempDir("rec_bad");
  struct Case {
    std::string config, attribute, detail;
  } cases[] = {
      {"", "path", "missing"},
      {kConfig("path", dir) + kConfig("fields", "qpos bogus"), "fields", "bogus"},
      {kConfig("path", dir) + kConfig("fields", "sensor:nope"), "fields", "nope"},
      {kConfig("path", dir) + kConfig("fields", "qpos qpos"), "fields", "twice"},
      {kConfig("path", dir) + kConfig("decimation", "0"), "decimation", "'0'"},
      {kConfig("path", dir) + kConfig("decimation", "2x"), "decimation", "'2x'"},
      {kConfig("path", dir) + kConfig("episode_steps", "-3"), "episode_steps", "'-3'"},
      {kConfig("path", dir) + kConfig("flush", "always"), "flush", "'always'"},
  };
  for (const auto& c : cases) {
    std::string error;
    ModelPtr m = Compile(Xml(c.config), &error);
    EXPECT_FALSE(m) << c.config;
    EXPECT_NE(error.find("attribute '" + c.attribute + "'"), std::string::npos) << error;
    EXPECT_NE(error.find(c.detail), std::string::npos) << error;
  }
  // An existing file of another model is refused at compile time, and left as it was.
  const std::string other = dir + "/other.ebmtraj";
  {
    ebm::trajectory::FileHeader h;
    h.set_model_hash(1);
    ebm::trajectory::TrajectoryWriter w(other, h);
  }
  const auto before = fs::file_size(other);
  std::string error;
  EXPECT_FALSE(Compile(Xml(kConfig("path", other)), &error));
  EXPECT_NE(error.find("cannot append"), std::string::npos) << error;
  EXPECT_EQ(fs::file_size(other), before);
  // Compiling a valid model creates no file.
  EXPECT_TRUE(Compile(Xml(kConfig("path", dir + "/new.ebmtraj"))));
  EXPECT_FALSE(fs::exists(dir + "/new.ebmtraj"));
}

TEST(Recorder, ThreadsWriteTheirOwnShardsAndFileModeShares) {
  for (const bool file_mode : {false, true}) {
    const auto dir = ebm::testing::FreshTempDir(file_mode ? "rec_thr_file" : "rec_thr_dir");
    const std::string path = file_mode ? dir + "/all.ebmtraj" : dir;
    ModelPtr m = Compile(Xml(kConfig("path", path) + kConfig("episode_steps", "40")));
    ASSERT_TRUE(m);
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t) {
      pool.emplace_back([&m, t] {
        DataPtr d(mj_makeData(m.get()));
        for (int k = 0; k < 200; ++k) {
          d->ctrl[0] = 0.1 * t;
          mj_step(m.get(), d.get());
        }
      });
    }
    for (auto& th : pool) th.join();
    TrajectoryCorpus c(path);
    EXPECT_EQ(c.shards().size(), file_mode ? 1u : 4u);
    EXPECT_EQ(c.size(), 20u);
    EXPECT_TRUE(c.issues().empty());
  }
}

TEST(Recorder, EpisodeApiSetsMetadata) {
  const auto dir = ebm::testing::FreshTempDir("rec_api");
  ModelPtr m = Compile(Xml(kConfig("path", dir)));
  DataPtr d(mj_makeData(m.get()));
  EXPECT_EQ(ebm_recorder_begin_episode(m.get(), d.get(), 77, 5, 3, 2), 1);
  for (int k = 0; k < 10; ++k) mj_step(m.get(), d.get());
  EXPECT_EQ(ebm_recorder_end_episode(m.get(), d.get()), 1);
  EXPECT_EQ(ebm_recorder_episodes_written(m.get(), d.get(), nullptr), 1u);
  TrajectoryCorpus c(dir);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c.episodes()[0].episode_id, 77u);
  EXPECT_EQ(c.episodes()[0].seed, 5u);
  EXPECT_EQ(c.episodes()[0].start_state_id, 3u);
  EXPECT_EQ(c.episodes()[0].branch_id, 2u);
  ModelPtr plain = Compile(Xml("", false));
  DataPtr dp(mj_makeData(plain.get()));
  EXPECT_EQ(ebm_recorder_end_episode(plain.get(), dp.get()), 0);
}

TEST(Recorder, SigkillKeepsEveryCompleteEpisode) {
  const auto dir = ebm::testing::FreshTempDir("rec_kill");
  ModelPtr m = Compile(Xml(kConfig("path", dir + "/k.ebmtraj") + kConfig("episode_steps", "100") +
                           kConfig("flush", "none") + kConfig("fields", "time qpos qvel ctrl")));
  ASSERT_TRUE(m);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    mjData* d = mj_makeData(m.get());
    for (long k = 0;; ++k) {
      Controls(m.get(), d, static_cast<int>(k % 1000));
      mj_step(m.get(), d);
    }
  }
  // Kill it once several episodes are on disk, mid-episode (it steps ~100x faster than we poll).
  for (int i = 0; i < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::error_code ec;
    if (fs::file_size(dir + "/k.ebmtraj", ec) > 20000 && !ec) break;
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  TrajectoryCorpus c(dir + "/k.ebmtraj");
  ASSERT_GE(c.size(), 2u);
  for (const auto& issue : c.issues()) {
    EXPECT_EQ(issue.kind, ebm::trajectory::ReadIssue::Kind::kTornTail) << issue.message;
  }
  for (size_t i = 0; i < c.size(); ++i) {
    const auto e = c.read(i);
    ASSERT_EQ(e.num_frames(), 100u);
    // Consecutive episodes: each starts where the previous one's 100 steps ended.
    EXPECT_NEAR(e.data(0), 0.2 * static_cast<double>(i), 1e-4);
  }
}
