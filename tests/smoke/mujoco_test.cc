// MuJoCo from the pinned wheel: the version is the one in scripts/requirements.lock, and the
// Shadow Hand block scene of gymnasium-robotics compiles with the documented sizes and steps
// stably under smooth random position targets.
#include <gtest/gtest.h>
#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ebm/build_info.h"

namespace {

using ModelPtr = std::unique_ptr<mjModel, void (*)(mjModel*)>;
using DataPtr = std::unique_ptr<mjData, void (*)(mjData*)>;

ModelPtr LoadHand() {
  const std::string path = std::string(ebm::build::kHandAssetsDir) + "/manipulate_block.xml";
  char error[1024] = "";
  ModelPtr m(mj_loadXML(path.c_str(), nullptr, error, sizeof(error)), mj_deleteModel);
  EXPECT_NE(m, nullptr) << path << ": " << error;
  return m;
}

}  // namespace

TEST(MujocoSmoke, VersionIsThePinnedOne) {
  EXPECT_STREQ(mj_versionString(), ebm::build::kMujocoPinnedVersion);
  EXPECT_EQ(mjVERSION_HEADER, mj_version());
}

TEST(MujocoSmoke, ShadowHandBlockSceneCompiles) {
  auto m = LoadHand();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->nq, 38);
  EXPECT_EQ(m->nv, 36);
  EXPECT_EQ(m->nu, 20);
  EXPECT_DOUBLE_EQ(m->opt.timestep, 0.002);
  EXPECT_GE(mj_name2id(m.get(), mjOBJ_JOINT, "object:joint"), 0);
}

TEST(MujocoSmoke, ShadowHandStepsStably) {
  auto m = LoadHand();
  ASSERT_NE(m, nullptr);
  DataPtr d(mj_makeData(m.get()), mj_deleteData);
  ASSERT_NE(d, nullptr);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> target(m->nu);
  for (int step = 0; step < 5000; ++step) {
    if (step % 20 == 0) {
      for (int i = 0; i < m->nu; ++i) {
        const double lo = m->actuator_ctrlrange[2 * i], hi = m->actuator_ctrlrange[2 * i + 1];
        target[i] = lo + (hi - lo) * u(rng);
      }
    }
    std::copy(target.begin(), target.end(), d->ctrl);
    mj_step(m.get(), d.get());
  }
  EXPECT_EQ(d->warning[mjWARN_BADQACC].number, 0);
  EXPECT_EQ(d->warning[mjWARN_BADQPOS].number, 0);
  EXPECT_EQ(d->warning[mjWARN_BADQVEL].number, 0);
  // Hand joints (limited hinges) stay in their ranges, up to the soft-limit slack.
  int checked = 0;
  for (int j = 0; j < m->njnt; ++j) {
    if (m->jnt_type[j] != mjJNT_HINGE || !m->jnt_limited[j]) continue;
    const double q = d->qpos[m->jnt_qposadr[j]];
    EXPECT_GE(q, m->jnt_range[2 * j] - 0.1) << mj_id2name(m.get(), mjOBJ_JOINT, j);
    EXPECT_LE(q, m->jnt_range[2 * j + 1] + 0.1) << mj_id2name(m.get(), mjOBJ_JOINT, j);
    ++checked;
  }
  EXPECT_EQ(checked, 24);
  // The block's velocity stays physical (the target marker has no contacts and is skipped).
  const int obj = mj_name2id(m.get(), mjOBJ_JOINT, "object:joint");
  for (int k = 0; k < 6; ++k) {
    const double v = d->qvel[m->jnt_dofadr[obj] + k];
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_LT(std::abs(v), 50.0);
  }
}
