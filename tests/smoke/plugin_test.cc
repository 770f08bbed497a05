// A tiny engine plugin of ours (tests/fixtures/counter_plugin.cc) registers when its library is
// loaded with mj_loadPluginLibrary, instantiates from MJCF, and is called by mj_step: `advance`
// once per step after integration, `compute` in the sensor stage of mj_forward. A bad attribute
// is refused with a warning that names it, not a crash.
#include <gtest/gtest.h>
#include <mujoco/mujoco.h>

#include <memory>
#include <string>

#include "tests/support/mujoco_xml.h"

namespace {

using ebm::testing::CompileXml;

std::string Scene(const std::string& increment) {
  return R"(<mujoco>
  <extension><plugin plugin="ebm.test.counter">
    <instance name="c"><config key="increment" value=")" +
         increment + R"("/></instance>
  </plugin></extension>
  <worldbody><body><joint type="slide"/><geom size="0.1"/></body></worldbody>
  <sensor><plugin name="count" instance="c"/></sensor>
</mujoco>)";
}

class PluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* dir = EBM_TEST_PLUGIN_DIR;
    const int before = mjp_pluginCount();
    mj_loadPluginLibrary((std::string(dir) + "/libebm_test_counter.so").c_str());
    ASSERT_EQ(mjp_pluginCount(), before + 1) << "the plugin did not register";
  }
};

}  // namespace

TEST_F(PluginTest, Registers) {
  int slot = -1;
  const mjpPlugin* p = mjp_getPlugin("ebm.test.counter", &slot);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(slot, 0);
  EXPECT_TRUE(p->capabilityflags & mjPLUGIN_SENSOR);
}

TEST_F(PluginTest, CalledByMjStep) {
  std::string error;
  mjModel* m = CompileXml(Scene("2.5"), &error);
  ASSERT_NE(m, nullptr) << error;
  mjData* d = mj_makeData(m);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(m->nsensordata, 1);
  const int n = 10;
  for (int i = 0; i < n; ++i) mj_step(m, d);
  EXPECT_DOUBLE_EQ(d->plugin_state[0], n * 2.5);      // advance: once per step
  EXPECT_DOUBLE_EQ(d->sensordata[0], (n - 1) * 2.5);  // compute: before the last advance
  mj_resetData(m, d);
  EXPECT_DOUBLE_EQ(d->plugin_state[0], 0.0);
  mj_deleteData(d);
  mj_deleteModel(m);
}

TEST_F(PluginTest, BadAttributeIsRefusedWithItsName) {
  // The compiler makes an mjData, so `init` rejects the attribute already at compile time: the
  // model is refused, and the compiler's error carries the plugin's warning, which names the
  // attribute and the bad value. (A failing init inside a plain mj_makeData is an mju_error, fatal
  // under the default handler: that is why attributes must be validated in init, which the
  // compiler runs, and never first at run time.)
  std::string error;
  mjModel* m = CompileXml(Scene("two"), &error);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(error.find("init failed"), std::string::npos) << error;
  EXPECT_NE(error.find("attribute 'increment'"), std::string::npos) << error;
  EXPECT_NE(error.find("'two'"), std::string::npos) << error;
  if (m) mj_deleteModel(m);
}
