// The rollout driver: the same episodes for any thread count, branches that share their start
// state and then diverge, particles that stay inside their box, output directories never mixed.
#include "plugin/rollout/rollout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datasets/trajectory/record_file.h"
#include "tests/support/temp_dir.h"

using ebm::trajectory::TrajectoryCorpus;

namespace {

ebm::rollout::RecordOptions Options(const std::string& out, int threads) {
  ebm::rollout::RecordOptions o;
  o.scene.name = "particles";
  o.scene.particles.count = 3;
  o.threads = threads;
  o.start_states = 3;
  o.branches = 3;
  o.warmup_steps = 100;
  o.episode_steps = 300;
  o.decimation = 3;
  o.fields = "time qpos qvel ctrl";
  o.flush = "none";
  o.seed = 11;
  o.out_dir = out;
  return o;
}

std::map<uint64_t, std::vector<float>> ById(const TrajectoryCorpus& c) {
  std::map<uint64_t, std::vector<float>> out;
  for (size_t i = 0; i < c.size(); ++i) {
    const auto e = c.read(i);
    out[e.episode_id()] = std::vector<float>(e.data().begin(), e.data().end());
  }
  return out;
}

// The two recordings hold the same 9 episodes, frame for frame.
void ExpectSameNineEpisodes(const std::map<uint64_t, std::vector<float>>& a,
                            const std::map<uint64_t, std::vector<float>>& b) {
  ASSERT_EQ(a.size(), 9u);
  ASSERT_EQ(b.size(), 9u);
  for (const auto& [id, data] : a) {
    ASSERT_TRUE(b.count(id)) << id;
    EXPECT_EQ(data, b.at(id)) << "episode " << id;
  }
}

}  // namespace

TEST(Rollout, SameEpisodesForAnyThreadCount) {
  const auto dir = ebm::testing::FreshTempDir("rollout_threads");
  const auto r1 = ebm::rollout::record_rollouts(Options(dir + "/t1", 1));
  const auto r3 = ebm::rollout::record_rollouts(Options(dir + "/t3", 3));
  EXPECT_EQ(r1.episodes, 9u);
  EXPECT_EQ(r3.episodes, 9u);
  TrajectoryCorpus c1(dir + "/t1"), c3(dir + "/t3");
  EXPECT_EQ(c1.shards().size(), 1u);
  EXPECT_EQ(c3.shards().size(), 3u);
  const auto a = ById(c1), b = ById(c3);
  ExpectSameNineEpisodes(a, b);
  // Another seed gives other episodes.
  auto o = Options(dir + "/s12", 2);
  o.seed = 12;
  ebm::rollout::record_rollouts(o);
  const auto c = ById(TrajectoryCorpus(dir + "/s12"));
  EXPECT_NE(c.at(0), a.at(0));
}

// Sharded recording (one process of several under torchrun): each shard records the start states
// s with s % shard_count == shard_index; the shards together are the one-process recording,
// episode for episode.
TEST(Rollout, ShardsTogetherAreTheOneProcessRecording) {
  const auto dir = ebm::testing::FreshTempDir("rollout_shards");
  ebm::rollout::record_rollouts(Options(dir + "/one", 2));
  uint64_t episodes = 0;
  std::vector<std::map<uint64_t, std::vector<float>>> by_shard;
  for (int shard = 0; shard < 2; ++shard) {
    auto o = Options(dir + "/sharded", 2);
    o.shard_index = shard;
    o.shard_count = 2;
    episodes += ebm::rollout::record_rollouts(o).episodes;
    // What this shard wrote so far, minus the earlier shards.
    auto all = ById(TrajectoryCorpus(dir + "/sharded"));
    for (const auto& earlier : by_shard)
      for (const auto& [id, data] : earlier) all.erase(id);
    by_shard.push_back(all);
  }
  EXPECT_EQ(episodes, 9u);
  // Start states 0 and 2 (episodes 0-2, 6-8) in shard 0, start state 1 (3-5) in shard 1.
  EXPECT_EQ(by_shard[0].size(), 6u);
  ASSERT_EQ(by_shard[1].size(), 3u);
  EXPECT_EQ(by_shard[1].begin()->first, 3u);
  ExpectSameNineEpisodes(ById(TrajectoryCorpus(dir + "/one")),
                         ById(TrajectoryCorpus(dir + "/sharded")));
  auto bad = Options(dir + "/bad", 1);
  bad.shard_index = 2;
  bad.shard_count = 2;
  EXPECT_THROW(ebm::rollout::record_rollouts(bad), std::invalid_argument);
}

TEST(Rollout, BranchesShareTheirStartAndDiverge) {
  const auto dir = ebm::testing::FreshTempDir("rollout_branches");
  const auto o = Options(dir + "/out", 2);
  ebm::rollout::record_rollouts(o);
  TrajectoryCorpus c(dir + "/out");
  const auto& layout = c.layout();
  const size_t q = *layout.offset("qpos"), fs = layout.frame_size();
  std::map<std::pair<uint32_t, uint32_t>, std::vector<float>> eps;
  for (size_t i = 0; i < c.size(); ++i) {
    const auto e = c.read(i);
    ASSERT_EQ(e.num_frames(), 100u);
    eps[{e.start_state_id(), e.branch_id()}] = std::vector<float>(e.data().begin(), e.data().end());
  }
  const double box = o.scene.particles.box;
  for (const auto& [key, d] : eps) {
    // Same start state: identical first frame (qpos, qvel); distinct later.
    const auto& first = eps.at({key.first, 0});
    for (size_t k = q; k < q + 12; ++k) EXPECT_EQ(d[k], first[k]) << key.first << "/" << key.second;
    if (key.second != 0) {
      double diff = 0;
      for (size_t k = 99 * fs + q; k < 99 * fs + q + 6; ++k) diff += std::abs(d[k] - first[k]);
      EXPECT_GT(diff, 1e-3) << "branch " << key.second << " of start state " << key.first;
    }
    // Slide joints measure displacement from the start grid; positions stay within the walls.
    for (size_t t = 0; t < 100; ++t) {
      for (size_t k = 0; k < 6; ++k) EXPECT_LT(std::abs(d[t * fs + q + k]), 2 * box);
    }
  }
  // Different start states differ.
  EXPECT_NE(eps.at({0, 0})[q], eps.at({1, 0})[q]);
}

TEST(Rollout, RefusesADirectoryWithRecordings) {
  const auto dir = ebm::testing::FreshTempDir("rollout_refuse");
  ebm::rollout::record_rollouts(Options(dir + "/out", 1));
  try {
    ebm::rollout::record_rollouts(Options(dir + "/out", 1));
    FAIL() << "mixed two recordings";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds trajectory files"), std::string::npos);
  }
  auto bad = Options(dir + "/bad", 1);
  bad.scene.particles.radius = 1.0;
  EXPECT_THROW(ebm::rollout::record_rollouts(bad), ebm::rollout::SceneError);
  bad = Options(dir + "/bad2", 0);
  EXPECT_THROW(ebm::rollout::record_rollouts(bad), std::invalid_argument);
}

TEST(Rollout, PrefixIsSharedByAllBranchesThenTheyDiverge) {
  const auto dir = ebm::testing::FreshTempDir("rollout_prefix");
  auto o = Options(dir + "/out", 2);
  o.prefix_steps = 90;  // 30 frames at decimation 3
  ebm::rollout::record_rollouts(o);
  TrajectoryCorpus c(dir + "/out");
  const size_t fs = c.layout().frame_size();
  std::map<uint32_t, std::vector<std::vector<float>>> by_state;
  for (size_t i = 0; i < c.size(); ++i) {
    const auto e = c.read(i);
    by_state[e.start_state_id()].emplace_back(e.data().begin(), e.data().end());
  }
  ASSERT_EQ(by_state.size(), 3u);
  for (const auto& [s, eps] : by_state) {
    ASSERT_EQ(eps.size(), 3u);
    for (size_t b = 1; b < eps.size(); ++b) {
      // Frames 0..29 (time, qpos, qvel, ctrl) identical; the controls differ from frame 30 on.
      for (size_t k = 0; k < 30 * fs; ++k)
        ASSERT_EQ(eps[b][k], eps[0][k]) << "state " << s << " value " << k;
      double diff = 0;
      for (size_t k = 30 * fs; k < 31 * fs; ++k) diff += std::abs(eps[b][k] - eps[0][k]);
      EXPECT_GT(diff, 0.0) << "state " << s << " branch " << b;
    }
  }
}
