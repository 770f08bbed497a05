// Windows over a synthetic recording: shapes, values, the split by start state, normalisation.
#include "datasets/trajectory/windows.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

using namespace ebm::trajectory;

namespace {

// 12 start states x 2 branches, 30 frames of qpos[3] and qvel[2];
// value = 1000 s + 100 b + t + k / 10. scattered: into two shards, the episodes dealt alternately
// and each shard in reverse order (as two rollout threads finishing in any order would write them).
std::string Write(const std::string& dir, bool scattered = false) {
  FileHeader h;
  h.set_model_hash(1);
  auto* q = h.add_fields();
  q->set_name("qpos");
  q->set_size(3);
  auto* v = h.add_fields();
  v->set_name("qvel");
  v->set_size(2);
  const std::string path = dir + "/w.ebmtraj";
  std::vector<Episode> episodes;
  for (uint32_t s = 0; s < 12; ++s) {
    for (uint32_t b = 0; b < 2; ++b) {
      Episode e;
      e.set_episode_id(s * 2 + b);
      e.set_start_state_id(s);
      e.set_branch_id(b);
      e.set_num_frames(30);
      for (int t = 0; t < 30; ++t) {
        for (int k = 0; k < 5; ++k)
          e.add_data(static_cast<float>(1000 * s + 100 * b + t + k / 10.0));
      }
      episodes.push_back(e);
    }
  }
  if (!scattered) {
    TrajectoryWriter w(path, h, SyncPolicy::kNone);
    for (const auto& e : episodes) w.append(e);
    return path;
  }
  TrajectoryWriter a(dir + "/a.ebmtraj", h, SyncPolicy::kNone),
      b(dir + "/b.ebmtraj", h, SyncPolicy::kNone);
  for (size_t i = episodes.size(); i-- > 0;) (i % 3 == 0 ? a : b).append(episodes[i]);
  return dir;
}

}  // namespace

TEST(Windows, ShapesValuesAndSplit) {
  const auto dir = ebm::testing::FreshTempDir("windows");
  TrajectoryCorpus corpus(Write(dir));
  WindowOptions o;
  o.history = 4;
  o.future = 6;
  o.stride = 5;
  o.features = {"qpos[1:3]", "qvel"};
  o.val_fraction = 0.3;
  WindowDataset all(corpus, o, "all"), train(corpus, o, "train"), val(corpus, o, "val");
  // Windows start at 0, 5, 10, 15, 20 (20 + 10 = 30 frames): 5 per episode, 24 episodes.
  EXPECT_EQ(all.size(), 120);
  EXPECT_EQ(train.size() + val.size(), 120);
  EXPECT_GT(val.size(), 0);
  EXPECT_GT(train.size(), 0);
  EXPECT_EQ(all.dim(), 4);
  ASSERT_EQ(all.history().sizes(), (std::vector<int64_t>{120, 4, 4}));
  ASSERT_EQ(all.future().sizes(), (std::vector<int64_t>{120, 6, 4}));
  // Window 7: episode 1 (state 0, branch 1), start 10: history frames 10..13, future 14..19.
  EXPECT_FLOAT_EQ(all.history()[7][0][0].item<float>(), 100 + 10 + 0.1f);  // qpos[1]
  EXPECT_FLOAT_EQ(all.history()[7][3][2].item<float>(), 100 + 13 + 0.3f);  // qvel[0] (k = 3)
  EXPECT_FLOAT_EQ(all.future()[7][5][3].item<float>(), 100 + 19 + 0.4f);
  EXPECT_EQ(all.t0()[7].item<int64_t>(), 14);
  EXPECT_EQ(all.branch()[7].item<int64_t>(), 1);
  // No start state is in both splits.
  for (int64_t i = 0; i < train.size(); ++i) {
    EXPECT_FALSE(
        is_validation_state(static_cast<uint32_t>(train.start_state()[i].item<int64_t>()), 0.3));
  }
  for (int64_t i = 0; i < val.size(); ++i) {
    EXPECT_TRUE(
        is_validation_state(static_cast<uint32_t>(val.start_state()[i].item<int64_t>()), 0.3));
  }
  // Normalisation round trip; displacements from the last history frame are 1..6 frames.
  const auto s = all.compute_stats();
  const auto z = normalize_future(all.future(), all.history(), s);
  EXPECT_TRUE(torch::allclose(denormalize_future(z, all.history(), s), all.future(), 1e-4, 1e-3));
  EXPECT_NEAR(s.delta_std[0].item<float>(), std::sqrt((1 + 4 + 9 + 16 + 25 + 36) / 6.0), 1e-3);
  // Errors name what is wrong.
  o.features = {"qacc"};
  EXPECT_THROW(WindowDataset(corpus, o, "all"), TrajectoryError);
  o.features = {"qpos[2:9]"};
  EXPECT_THROW(WindowDataset(corpus, o, "all"), TrajectoryError);
  o.features = {"qpos"};
  o.future = 40;
  EXPECT_THROW(WindowDataset(corpus, o, "all"), TrajectoryError);
}

TEST(Windows, OrderDoesNotDependOnShards) {
  // The same episodes in one file and scattered over two shards in another order: the same
  // windows in the same order (it decides the training batches).
  const auto one_dir = ebm::testing::FreshTempDir("windows_one"),
             two_dir = ebm::testing::FreshTempDir("windows_two");
  TrajectoryCorpus one(Write(one_dir)), two(Write(two_dir, true));
  ASSERT_EQ(two.size(), one.size());
  ASSERT_NE(two.episodes()[0].episode_id,
            one.episodes()[0].episode_id);  // the files differ in order
  // The corpus's branch order: episode ids are s * 2 + b, so ascending ids.
  for (const auto* corpus : {&one, &two}) {
    const auto order = corpus->branch_order();
    ASSERT_EQ(order.size(), 24u);
    for (size_t k = 0; k < order.size(); ++k) EXPECT_EQ(corpus->episodes()[order[k]].episode_id, k);
  }
  WindowOptions o;
  o.history = 3;
  o.future = 5;
  o.stride = 4;
  o.features = {"qpos", "qvel"};
  o.val_fraction = 0.25;
  for (const char* split : {"all", "train", "val"}) {
    WindowDataset x(one, o, split), y(two, o, split);
    EXPECT_TRUE(torch::equal(x.history(), y.history())) << split;
    EXPECT_TRUE(torch::equal(x.future(), y.future())) << split;
    EXPECT_TRUE(torch::equal(x.start_state(), y.start_state())) << split;
    EXPECT_TRUE(torch::equal(x.branch(), y.branch())) << split;
  }
}
