// `ebm eval compose` on procedural dSprites with the shipped config, at half its batch (two experts
// of 600 CD steps of 16 images: about 6 minutes on 2 cores where the shipped config takes 12).
// Run serially by CTest (see tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <string>

#include "ebm/experiments/image_eval.h"
#include "tests/support/python_check.h"
#include "tests/support/temp_dir.h"

namespace ex = ebm::experiments;
using ebm::testing::PythonCheck;

TEST(Compose, TheSumOfTwoFactorModelsPlacesSquaresWhereNeitherAloneDoes) {
  const auto dir = ebm::testing::FreshTempDir("eval_compose");
  ex::EvalRunOptions o;
  o.experiment = "compose";
  o.config_path = std::string(EBM_TEST_SOURCE_DIR) + "/configs/eval/compose_dsprites.yaml";
  o.out_dir = dir + "/run";
  o.quiet = true;
  o.overrides = {"device=cpu", "compose.samples_per_target=2", "trainer.batch_size=16"};
  const auto s = ex::run_image_eval(o);
  // The regressor reads rendered squares right (else the scores below mean nothing).
  EXPECT_TRUE(PythonCheck(s.metrics_json, "d['regressor_accuracy_on_renders'] == 1")) << s.table;
  // Unseen (scale, position) targets: the size model keeps its one position and the position
  // model its one scale, so neither alone gets both (0 of the targets at this seed); their sum
  // does for 0.50 of them (0.28 to 0.45 at the shipped batch of 32). At seed 1 this half batch
  // let the position model drift in scale (0.47 alone, the sum 0.25), which this test would flag.
  EXPECT_TRUE(PythonCheck(
      s.metrics_json,
      "(lambda f: f['sum']['joint_accuracy'] >= 0.15 and f['sum']['joint_accuracy'] > "
      "3 * max(f['size_model']['joint_accuracy'], f['position_model']['joint_accuracy']) + 0.05)"
      "(d['factor_accuracy'])"))
      << s.table;
  EXPECT_TRUE(PythonCheck(s.metrics_json,
                          "d['demo_2d']['A_plus_B']['on_both'] > 0.9 and "
                          "d['demo_2d']['A_ring']['on_both'] < 0.5"))
      << s.table;
}
