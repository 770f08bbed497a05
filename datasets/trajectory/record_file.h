// The trajectory record file: framed, checksummed protobuf records (no LibTorch).
//
// A file is a sequence of frames:
//
//   magic     u32 little-endian, kFrameMagic ("EBTR")
//   length    u32 little-endian, payload bytes (at most kMaxPayload)
//   head_crc  u32 little-endian, masked CRC32C of the 8 bytes magic+length
//   payload   `length` bytes: a serialized ebm.trajectory.Record
//   data_crc  u32 little-endian, masked CRC32C of the payload
//
// The first record holds the FileHeader, every further record one Episode. A frame cut short by
// the end of the file (a writer killed mid-write) is a "torn tail": readers stop there cleanly.
// A frame whose checksums fail is "corrupt": readers report its file and offset, skip it (using
// the length when the head checksum holds, else scanning for the next valid frame head) and go on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datasets/trajectory/trajectory.pb.h"

namespace ebm::trajectory {

inline constexpr uint32_t kFrameMagic = 0x52544245u;  // bytes "EBTR"
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kMaxPayload = 1u << 30;
inline constexpr size_t kFrameOverhead = 16;
// File name suffix of trajectory files; directories are read as shards of these.
inline constexpr char kFileSuffix[] = ".ebmtraj";

// Thrown for unreadable or incompatible files; the message names the file and what was found.
class TrajectoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The frame bytes (head, payload, checksum) for one payload.
std::string encode_frame(const std::string& payload);

// Reads only the header record of a trajectory file; throws TrajectoryError naming the file when
// it is missing, is not a trajectory file or has another format version.
FileHeader read_file_header(const std::string& path);

// Throws TrajectoryError (naming `file`) unless `b` has the model hash, field layout and
// decimation of `a`, so that records of both can be mixed.
void check_compatible(const FileHeader& a, const FileHeader& b, const std::string& file);
// "qpos[38] qvel[36] ctrl[20]".
std::string layout_text(const FileHeader& header);
// A model hash as the stats and record.json show it: lower-case hex.
std::string hex_hash(uint64_t hash);

// Offsets of the fields of a frame, from the header's field list.
class FrameLayout {
 public:
  FrameLayout() = default;
  explicit FrameLayout(const FileHeader& header);
  size_t frame_size() const { return frame_size_; }
  // Offset of field `name` inside a frame, or nullopt when the file has no such field.
  std::optional<size_t> offset(const std::string& name) const;
  // Size of field `name`; throws TrajectoryError when absent.
  size_t size(const std::string& name) const;
  const std::vector<std::pair<std::string, size_t>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, size_t>> fields_;
  std::vector<size_t> offsets_;
  size_t frame_size_ = 0;
};

// A problem found while reading: a corrupt frame or a torn tail.
struct ReadIssue {
  enum class Kind { kCorrupt, kTornTail };
  Kind kind;
  std::string file;
  uint64_t offset = 0;  // byte offset of the frame (or of the torn bytes)
  std::string message;
  std::string kind_name() const { return kind == Kind::kCorrupt ? "corrupt" : "torn_tail"; }
};

enum class SyncPolicy {
  kEpisode,  // fsync after every episode (default: a power loss loses at most the open episode)
  kClose,    // fsync once when the file is closed
  kNone,     // leave it to the OS (a killed process still loses nothing that was written)
};
// Parses "episode" | "close" | "none"; nullopt otherwise.
std::optional<SyncPolicy> parse_sync_policy(const std::string& text);

// Appends episodes to one trajectory file. Every episode is written with one write() as soon as
// it is appended, so a killed process loses only episodes not yet appended.
class TrajectoryWriter {
 public:
  // Creates `path` with `header` (format_version is filled in). When the file exists:
  // `append` = false refuses it; `append` = true checks that its header has the same model hash
  // and field layout, cuts a torn tail and appends after the last complete frame. Never
  // overwrites complete records. Throws TrajectoryError.
  TrajectoryWriter(const std::string& path, FileHeader header,
                   SyncPolicy sync = SyncPolicy::kEpisode, bool append = false);
  ~TrajectoryWriter();
  TrajectoryWriter(const TrajectoryWriter&) = delete;
  TrajectoryWriter& operator=(const TrajectoryWriter&) = delete;

  // Checks that episode.data() holds num_frames x frame_size values, then writes it.
  void append(const Episode& episode);
  // Flushes to disk (fsync) regardless of the policy.
  void sync();
  // Syncs if the policy asks and closes; the destructor does this too (without throwing).
  void close();

  const std::string& path() const { return path_; }
  const FileHeader& header() const { return header_; }
  const FrameLayout& layout() const { return layout_; }
  uint64_t episodes_written() const { return episodes_written_; }

 private:
  void write_all(const std::string& bytes);
  std::string path_;
  FileHeader header_;
  FrameLayout layout_;
  SyncPolicy sync_;
  std::string frame_buf_;  // reused for every episode: no large allocation per append
  int fd_ = -1;
  uint64_t episodes_written_ = 0;
};

// Where an episode lives and its metadata, without its frames.
struct EpisodeInfo {
  size_t shard = 0;
  uint64_t offset = 0;  // of its frame in the shard
  uint32_t length = 0;  // payload bytes
  uint64_t episode_id = 0;
  uint64_t seed = 0;
  uint32_t start_state_id = 0;
  uint32_t branch_id = 0;
  uint32_t num_frames = 0;
};

// All episodes of one file or of a directory of shards (`*.ebmtraj`, read in name order), indexed
// once (every checksum verified) for random access. Shards must share the field layout and model
// hash of the first; corrupt records and torn tails are skipped and listed in issues().
class TrajectoryCorpus {
 public:
  // Throws TrajectoryError for a missing path, an empty directory, a file without a valid header
  // or shards of different layouts.
  explicit TrajectoryCorpus(const std::string& path);

  const FileHeader& header() const { return header_; }
  const FrameLayout& layout() const { return layout_; }
  const std::vector<std::string>& shards() const { return shards_; }
  const std::vector<EpisodeInfo>& episodes() const { return episodes_; }
  size_t size() const { return episodes_.size(); }
  uint64_t total_frames() const;
  const std::vector<ReadIssue>& issues() const { return issues_; }

  // Reads episode i (index order), verifying its checksum again. Throws TrajectoryError.
  Episode read(size_t i) const;
  // Index of the episode with this id, or nullopt.
  std::optional<size_t> find(uint64_t episode_id) const;
  // Indices of all episodes by (start state, branch, episode id), whatever the shards' order
  // (rollout threads fill their shards in whatever order they finish): what consumers that must
  // be reproducible iterate.
  std::vector<size_t> branch_order() const;
  // A JSON summary: shards, episodes, frames, field layout, model, issues with offsets.
  std::string stats_json() const;

 private:
  void index_file(size_t shard);
  std::vector<std::string> shards_;
  FileHeader header_;
  FrameLayout layout_;
  std::vector<EpisodeInfo> episodes_;
  std::vector<ReadIssue> issues_;
};

// The frames of one field of an episode as num_frames x size row-major values.
std::vector<float> field_values(const Episode& episode, const FrameLayout& layout,
                                const std::string& field);

}  // namespace ebm::trajectory
