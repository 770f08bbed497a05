// Checkpoint manager: atomic files, keep-last pruning, best tracking, clear errors.
#include "ebm/core/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ebm/core/archive_file.h"
#include "ebm/util/files.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;

TEST(Checkpoint, KeepsLastKAndTheBestAndLeavesNoTempFiles) {
  const auto dir = ebm::testing::FreshTempDir("keep");
  ebm::CheckpointManager m(dir, 2);
  const double metrics[] = {5.0, 3.0, 4.0, 6.0};
  for (int step = 1; step <= 4; ++step) {
    m.save(
        step, [&](torch::serialize::OutputArchive& a) { a.write("x", torch::full({2}, step)); },
        metrics[step - 1]);
  }
  auto all = m.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_NE(all[0].find("ckpt-0000000003.pt"), std::string::npos);
  EXPECT_NE(all[1].find("ckpt-0000000004.pt"), std::string::npos);
  EXPECT_EQ(*m.latest(), all[1]);
  torch::serialize::InputArchive best;
  ebm::CheckpointManager::load(dir + "/best.pt", best);
  torch::Tensor x;
  best.read("x", x);
  EXPECT_EQ(x[0].item<float>(), 2.0f);  // step 2 had the lowest metric (3.0)
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
  // A new manager on the same folder remembers the best metric.
  ebm::CheckpointManager again(dir, 2);
  again.save(
      5, [&](torch::serialize::OutputArchive& a) { a.write("x", torch::full({2}, 5)); }, 3.5);
  torch::serialize::InputArchive best2;
  ebm::CheckpointManager::load(dir + "/best.pt", best2);
  best2.read("x", x);
  EXPECT_EQ(x[0].item<float>(), 2.0f);  // 3.5 is no improvement on 3.0
  again.save(
      6, [&](torch::serialize::OutputArchive& a) { a.write("x", torch::full({2}, 6)); }, 2.5);
  torch::serialize::InputArchive best3;
  ebm::CheckpointManager::load(dir + "/best.pt", best3);
  best3.read("x", x);
  EXPECT_EQ(x[0].item<float>(), 6.0f);
  fs::remove_all(dir);
}

TEST(Checkpoint, MissingAndCorruptFilesAreClearErrors) {
  const auto dir = ebm::testing::FreshTempDir("bad");
  fs::create_directories(dir);
  torch::serialize::InputArchive a;
  try {
    ebm::CheckpointManager::load(dir + "/nope.pt", a);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.pt: checkpoint not found"), std::string::npos);
  }
  std::ofstream(dir + "/junk.pt") << "this is not a zip archive";
  try {
    ebm::CheckpointManager::load(dir + "/junk.pt", a);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.pt: not a readable LibTorch archive"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

// Every byte of a sealed archive is covered: flipping any one (in a tensor, the pickle, the zip
// directory, the seal) is an error naming the file, never different weights; the sealed file is
// still a zip LibTorch reads, and unsealed archives (written before the seal) are still read.
TEST(Checkpoint, AFlippedByteAnywhereIsACorruptFile) {
  const auto dir = ebm::testing::FreshTempDir("sealed");
  torch::serialize::OutputArchive out;
  out.write("w", torch::arange(1000, torch::kFloat32));
  const std::string path = dir + "/model.pt";
  ebm::write_archive_file(path, out);
  const std::string good = ebm::util::read_file(path);
  {
    torch::serialize::InputArchive in;
    ebm::read_archive_file(path, in);
    torch::Tensor w;
    in.read("w", w);
    EXPECT_TRUE(torch::equal(w, torch::arange(1000, torch::kFloat32)));
  }
  int refused = 0, positions = 0;
  for (size_t at = 0; at < good.size(); at += 97) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    ebm::util::write_file_atomic(path, bad);
    ++positions;
    try {
      torch::serialize::InputArchive in;
      ebm::read_archive_file(path, in);
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_EQ(refused, positions);
  // The same archive without its seal: read as before.
  std::ostringstream plain;
  out.save_to(plain);
  ebm::util::write_file_atomic(path, plain.str());
  torch::serialize::InputArchive in;
  EXPECT_NO_THROW(ebm::read_archive_file(path, in));
  fs::remove_all(dir);
}
