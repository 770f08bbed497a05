// The trajectory record file: exact frame bytes against an independent CRC32C, round trips,
// torn tails at every cut, flipped bytes reported at their record, append rules, shards.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "datasets/trajectory/record_file.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace ebm::trajectory;

namespace {

// Bit-by-bit CRC32C (reflected polynomial 0x82F63B78), independent of the library's tables.
uint32_t ReferenceCrc32c(const std::string& s) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xffffffffu;
}
uint32_t Masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
std::string U32(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}

FileHeader Header(uint64_t hash = 42) {
  FileHeader h;
  h.set_model_name("toy");
  h.set_model_hash(hash);
  h.set_timestep(0.002);
  h.set_decimation(1);
  auto* a = h.add_fields();
  a->set_name("qpos");
  a->set_size(3);
  auto* b = h.add_fields();
  b->set_name("ctrl");
  b->set_size(2);
  return h;
}

// Episode i: `frames` frames of 5 values, value = 1000 i + 10 t + k.
Episode MakeEpisode(uint64_t i, uint32_t frames = 4) {
  Episode e;
  e.set_episode_id(i);
  e.set_seed(100 + i);
  e.set_start_state_id(static_cast<uint32_t>(i / 2));
  e.set_branch_id(static_cast<uint32_t>(i % 2));
  e.set_num_frames(frames);
  for (uint32_t t = 0; t < frames; ++t) {
    for (int k = 0; k < 5; ++k) e.add_data(static_cast<float>(1000 * i + 10 * t + k));
  }
  return e;
}

std::string WriteFile(const std::string& dir, int episodes, const std::string& name = "a.ebmtraj") {
  const std::string path = dir + "/" + name;
  TrajectoryWriter w(path, Header(), SyncPolicy::kNone);
  for (int i = 0; i < episodes; ++i) w.append(MakeEpisode(static_cast<uint64_t>(i)));
  return path;
}

void Expect(const Episode& e, uint64_t i) {
  const Episode want = MakeEpisode(i, e.num_frames());
  EXPECT_EQ(e.episode_id(), i);
  EXPECT_EQ(e.seed(), 100 + i);
  ASSERT_EQ(e.data_size(), want.data_size());
  for (int k = 0; k < e.data_size(); ++k) ASSERT_EQ(e.data(k), want.data(k)) << "value " << k;
}

}  // namespace

TEST(TrajectoryRecord, FrameBytesAreExact) {
  EXPECT_EQ(ReferenceCrc32c("123456789"), 0xe3069283u);  // the CRC32C check value
  const std::string payload = "hello, trajectories";
  const std::string head = U32(0x52544245u) + U32(static_cast<uint32_t>(payload.size()));
  const std::string want =
      head + U32(Masked(ReferenceCrc32c(head))) + payload + U32(Masked(ReferenceCrc32c(payload)));
  EXPECT_EQ(encode_frame(payload), want);
  EXPECT_EQ(encode_frame(payload).substr(0, 4), "EBTR");
}

TEST(TrajectoryRecord, RoundTripWithRandomAccess) {
  const auto dir = ebm::testing::FreshTempDir("traj_roundtrip");
  const std::string path = WriteFile(dir, 5);
  TrajectoryCorpus c(path);
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.total_frames(), 20u);
  EXPECT_TRUE(c.issues().empty());
  EXPECT_EQ(c.header().model_name(), "toy");
  EXPECT_EQ(c.header().format_version(), kFormatVersion);
  EXPECT_EQ(c.layout().frame_size(), 5u);
  EXPECT_EQ(*c.layout().offset("ctrl"), 3u);
  for (size_t i : {4u, 0u, 2u}) Expect(c.read(i), i);
  ASSERT_TRUE(c.find(3).has_value());
  EXPECT_EQ(*c.find(3), 3u);
  EXPECT_FALSE(c.find(99).has_value());
  EXPECT_EQ(c.episodes()[3].start_state_id, 1u);
  EXPECT_EQ(c.episodes()[3].branch_id, 1u);
  const auto ctrl = field_values(c.read(1), c.layout(), "ctrl");
  ASSERT_EQ(ctrl.size(), 8u);
  EXPECT_EQ(ctrl[0], 1003.f);
  EXPECT_EQ(ctrl[3], 1014.f);
  EXPECT_THROW(field_values(c.read(1), c.layout(), "qvel"), TrajectoryError);
  const std::string json = c.stats_json();
  const auto stats = ebm::util::parse_json(json, "stats_json");
  EXPECT_EQ(stats.at("episodes").integer(), 5) << json;
  EXPECT_EQ(stats.at("frames").integer(), 20) << json;
  const auto& ctrl_field = stats.at("fields").at(stats.at("fields").size() - 1);
  EXPECT_EQ(ctrl_field.at("name").string(), "ctrl") << json;
  EXPECT_EQ(ctrl_field.at("size").integer(), 2) << json;
  EXPECT_TRUE(stats.at("issues").is_array() && stats.at("issues").empty()) << json;
}

TEST(TrajectoryRecord, EveryCutInsideTheLastRecordIsACleanTornTail) {
  const auto dir = ebm::testing::FreshTempDir("traj_torn");
  const std::string full = ebm::util::read_file(WriteFile(dir, 3));
  // The end of the second episode: the file minus the last frame.
  Record r;
  *r.mutable_episode() = MakeEpisode(2);
  const size_t last_frame = encode_frame(r.SerializeAsString()).size();
  const size_t cut_start = full.size() - last_frame;
  for (size_t cut = cut_start + 1; cut < full.size(); ++cut) {
    const std::string path = dir + "/cut.ebmtraj";
    ebm::util::write_file_atomic(path, full.substr(0, cut));
    TrajectoryCorpus c(path);
    ASSERT_EQ(c.size(), 2u) << "cut at " << cut;
    ASSERT_EQ(c.issues().size(), 1u) << "cut at " << cut;
    EXPECT_EQ(c.issues()[0].kind, ReadIssue::Kind::kTornTail);
    EXPECT_EQ(c.issues()[0].offset, cut_start);
    Expect(c.read(1), 1);
  }
}

TEST(TrajectoryRecord, FlippedBytesAreReportedAtTheirRecordAndSkipped) {
  const auto dir = ebm::testing::FreshTempDir("traj_flip");
  const std::string path = WriteFile(dir, 4);
  const std::string good = ebm::util::read_file(path);
  TrajectoryCorpus clean(path);
  const uint64_t off2 = clean.episodes()[2].offset;
  const uint64_t off1 = clean.episodes()[1].offset;
  // A payload byte of episode 2: checksum mismatch at its frame, the others intact.
  std::string bad = good;
  bad[off2 + 30] ^= 0x10;
  ebm::util::write_file_atomic(path, bad);
  TrajectoryCorpus c(path);
  ASSERT_EQ(c.size(), 3u);
  ASSERT_EQ(c.issues().size(), 1u);
  EXPECT_EQ(c.issues()[0].kind, ReadIssue::Kind::kCorrupt);
  EXPECT_EQ(c.issues()[0].offset, off2);
  EXPECT_EQ(c.issues()[0].file, path);
  EXPECT_NE(c.issues()[0].message.find("checksum"), std::string::npos);
  Expect(c.read(2), 3);
  EXPECT_NE(c.stats_json().find("\"offset\": " + std::to_string(off2)), std::string::npos);
  // A length byte of episode 1: the head fails, the reader resynchronises on the next frame.
  bad = good;
  bad[off1 + 5] ^= 0x01;
  ebm::util::write_file_atomic(path, bad);
  TrajectoryCorpus c2(path);
  ASSERT_EQ(c2.size(), 3u);
  ASSERT_EQ(c2.issues().size(), 1u);
  EXPECT_EQ(c2.issues()[0].offset, off1);
  Expect(c2.read(1), 2);
  // A damaged header makes the file unreadable, with its name in the error.
  bad = good;
  bad[14] ^= 0x01;
  ebm::util::write_file_atomic(path, bad);
  try {
    TrajectoryCorpus c3(path);
    FAIL() << "a damaged header was accepted";
  } catch (const TrajectoryError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(TrajectoryRecord, WriterNeverOverwritesAndAppendsOnlyCompatibleFiles) {
  const auto dir = ebm::testing::FreshTempDir("traj_append");
  const std::string path = WriteFile(dir, 2);
  EXPECT_THROW(TrajectoryWriter(path, Header()), TrajectoryError);
  EXPECT_THROW(TrajectoryWriter(path, Header(/*hash=*/7), SyncPolicy::kNone, true),
               TrajectoryError);
  // Tear the tail, then append: the torn bytes are cut and the new episode follows.
  const std::string bytes = ebm::util::read_file(path);
  ebm::util::write_file_atomic(path, bytes.substr(0, bytes.size() - 9));
  {
    TrajectoryWriter w(path, Header(), SyncPolicy::kEpisode, /*append=*/true);
    w.append(MakeEpisode(7));
  }
  TrajectoryCorpus c(path);
  EXPECT_TRUE(c.issues().empty());
  ASSERT_EQ(c.size(), 2u);
  Expect(c.read(0), 0);
  Expect(c.read(1), 7);
  // A wrong-sized episode is refused before anything is written.
  TrajectoryWriter w(dir + "/b.ebmtraj", Header());
  Episode e = MakeEpisode(1);
  e.add_data(1.f);
  EXPECT_THROW(w.append(e), TrajectoryError);
}

TEST(TrajectoryRecord, ShardedDirectoriesMustShareTheLayout) {
  const auto dir = ebm::testing::FreshTempDir("traj_shards");
  WriteFile(dir, 2, "s0.ebmtraj");
  {
    TrajectoryWriter w(dir + "/s1.ebmtraj", Header(), SyncPolicy::kNone);
    w.append(MakeEpisode(10));
  }
  std::ofstream(dir + "/notes.txt") << "not a shard";
  TrajectoryCorpus c(dir);
  EXPECT_EQ(c.shards().size(), 2u);
  ASSERT_EQ(c.size(), 3u);
  Expect(c.read(*c.find(10)), 10);
  { TrajectoryWriter w(dir + "/s2.ebmtraj", Header(/*hash=*/9), SyncPolicy::kNone); }
  try {
    TrajectoryCorpus bad(dir);
    FAIL() << "mixed models were accepted";
  } catch (const TrajectoryError& e) {
    EXPECT_NE(std::string(e.what()).find("s2.ebmtraj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model hash"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TrajectoryCorpus(dir + "/missing"), TrajectoryError);
  const auto empty = ebm::testing::FreshTempDir("traj_empty");
  EXPECT_THROW(TrajectoryCorpus{empty}, TrajectoryError);
  ebm::util::write_file_atomic(empty + "/junk.ebmtraj", std::string(100, 'x'));
  EXPECT_THROW(TrajectoryCorpus{empty}, TrajectoryError);
}
