// The evaluation's statistics, re-simulation, long horizons and goals end to end on a small
// particles run whose features hold the controls: the recorded branches replay to themselves in
// MuJoCo (re-simulation error ~0, an independent check of the frame and control alignment), every
// metric's bootstrap interval holds its mean, the paired differences and verdicts are there, the
// held-out states were recorded long enough for the long-horizon curves, and composing the goal
// takes the EBM's futures closer to the goal than the same chains without it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>
#include <string>

#include "datasets/trajectory/record_file.h"
#include "datasets/trajectory/split.h"
#include "ebm/experiments/trajectory.h"
#include "ebm/util/json.h"
#include "plugin/recorder/recorder.h"
#include "tests/support/temp_dir.h"

namespace {

ebm::util::Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ebm::util::parse_json(ss.str(), path);
}

}  // namespace

TEST(TrajectoryFutures, ResimulationIntervalsLongHorizonsAndGoals) {
  ebm::recorder::RegisterPlugin();
  const auto dir = ebm::testing::FreshTempDir("traj_futures");
  ebm::experiments::TrajRunOptions o;
  o.config_path = std::string(EBM_TEST_SOURCE_DIR) + "/configs/trajectories/particles_traj.yaml";
  o.out_dir = dir + "/run";
  o.quiet = true;
  // Episodes of 400 steps = 100 frames (decimation 4) after a 40-step prefix; held-out states run
  // 40 + 4 x 120 steps, so their branches cover the 120-frame long horizon. New controls every 8
  // steps (the shipped 10 change them inside a frame, which a replay of per-frame controls cannot
  // reproduce).
  o.overrides = {"device=cpu",
                 "policy.action_repeat=8",
                 "rollout.start_states=16",
                 "rollout.branches=4",
                 "rollout.held_out_episode_steps=520",
                 "windows.features=[qpos, qvel, ctrl]",
                 "trainer.iterations=150",
                 "baselines.fc_iterations=100",
                 "baselines.mdn_iterations=100",
                 "eval.horizon=40",
                 "eval.error_frames=[20, 40]",
                 "eval.max_states=4",
                 "eval.render=false",
                 "eval.long_horizon=120",
                 "eval.long_samples=2",
                 "eval.goal.weight=1.5",
                 "eval.goal.mdn_samples=8"};
  const auto s = ebm::experiments::run_trajectory(o);

  // Held-out start states were recorded longer than the training ones.
  const ebm::trajectory::TrajectoryCorpus corpus(dir + "/run/trajectories");
  for (const auto& e : corpus.episodes()) {
    const bool held_out = ebm::trajectory::is_validation_state(e.start_state_id, 0.35);
    EXPECT_EQ(e.num_frames, held_out ? 130u : 100u) << "start state " << e.start_state_id;
  }

  const auto& m = s.metrics;
  ASSERT_TRUE(m.count("ground_truth") && m.at("ground_truth").count("resim_ade"));
  // The recording replays to itself: only float32 rounding of the recorded start state and
  // MuJoCo's warm start differ.
  EXPECT_LT(m.at("ground_truth").at("resim_ade"), 1e-3);
  EXPECT_GT(m.at("mdn").at("resim_ade"), m.at("ground_truth").at("resim_ade"));

  const auto doc = ReadJson(s.metrics_json);
  const int64_t states = doc.at("states").integer();
  EXPECT_GE(states, 2);
  for (const std::string method : {"ebm", "mdn", "fc", "ground_truth"}) {
    const auto& means = doc.at("methods").at(method);
    const auto& intervals = doc.at("intervals").at(method);
    for (const std::string metric : {"min_fde", "energy_distance", "penetration"}) {
      const double mean = means.at(metric).number();
      const double lo = intervals.at(metric).at(0).number(),
                   hi = intervals.at(metric).at(1).number();
      EXPECT_LE(lo, mean + 1e-12) << method << " " << metric;
      EXPECT_GE(hi, mean - 1e-12) << method << " " << metric;
    }
  }
  for (const std::string pair : {"ebm - mdn", "ebm - fc"}) {
    const auto& d = doc.at("paired_differences").at(pair).at("min_fde");
    EXPECT_NEAR(d.at("mean").number(),
                doc.at("methods").at(pair.substr(0, 3)).at("min_fde").number() -
                    doc.at("methods").at(pair.substr(6)).at("min_fde").number(),
                1e-9);
  }
  EXPECT_GT(doc.at("verdicts").size(), 10u);

  // Long horizons: every sampled method measured on all 120 frames, branches as far.
  const auto& curves = doc.at("long_horizon").at("curves");
  for (const std::string method : {"ebm", "mdn", "fc"}) {
    EXPECT_EQ(curves.at(method).at("diverged").size(), 120u) << method;
    EXPECT_EQ(curves.at(method).at("nearest_branch_distance").size(), 120u) << method;
  }
  EXPECT_TRUE(m.at("fc").count("long_velocity_inconsistency"));

  // Goals: the composed goal energy pulls the same chains toward the goal.
  const auto& goals = doc.at("goals");
  EXPECT_EQ(goals.at("goals").integer(), states);
  const double steered = goals.at("methods").at("ebm_goal").at("goal_distance").number();
  const double free = goals.at("methods").at("ebm_experts").at("goal_distance").number();
  EXPECT_LT(steered, 0.7 * free);
  EXPECT_TRUE(goals.at("paired_differences").find("ebm_goal - mdn_best_of_n") != nullptr);
}
