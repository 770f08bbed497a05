#include "datasets/trajectory/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <sstream>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "ebm/util/crc32c.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"

namespace ebm::trajectory {
namespace fs = std::filesystem;

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string system_error_text() {
  return std::error_code(errno, std::generic_category()).message();
}

// util::open_regular_file and util::read_file with this format's error type.
int open_regular(const std::string& path) {
  return util::rethrow_as<TrajectoryError>([&] { return util::open_regular_file(path); });
}

std::string read_whole(const std::string& path) {
  return util::rethrow_as<TrajectoryError>([&] { return util::read_file(path); });
}

bool head_valid(const char* p) {
  return get_u32(p) == kFrameMagic && get_u32(p + 4) <= kMaxPayload &&
         get_u32(p + 8) == util::masked_crc32c(p, 8);
}

// Walks the frames of `bytes`; calls `on_payload(offset, payload)` for every intact frame and
// records corrupt frames and a torn tail in `issues`. Returns the end of the last intact frame.
uint64_t scan_frames(std::string_view bytes, const std::string& file,
                     std::vector<ReadIssue>& issues,
                     const std::function<void(uint64_t, std::string_view)>& on_payload) {
  const size_t n = bytes.size();
  size_t pos = 0;
  uint64_t good_end = 0;
  while (pos < n) {
    if (n - pos < 12) {
      issues.push_back(
          {ReadIssue::Kind::kTornTail, file, pos,
           std::to_string(n - pos) + " bytes after the last frame, too few for a frame head"});
      break;
    }
    const char* p = bytes.data() + pos;
    if (!head_valid(p)) {
      size_t next = pos + 1;
      while (next + 12 <= n && !head_valid(bytes.data() + next)) ++next;
      const bool found = next + 12 <= n;
      std::ostringstream msg;
      msg << "bad frame head (magic " << std::hex << get_u32(p) << ", expected " << kFrameMagic
          << std::dec << ", or head checksum mismatch); "
          << (found ? "skipped " + std::to_string(next - pos) + " bytes to the next frame"
                    : std::string("no valid frame follows"));
      issues.push_back({ReadIssue::Kind::kCorrupt, file, pos, msg.str()});
      if (!found) break;
      pos = next;
      continue;
    }
    const uint32_t length = get_u32(p + 4);
    if (n - pos < kFrameOverhead + static_cast<size_t>(length)) {
      issues.push_back({ReadIssue::Kind::kTornTail, file, pos,
                        "frame of " + std::to_string(length) + " payload bytes cut off after " +
                            std::to_string(n - pos) + " bytes"});
      break;
    }
    const std::string_view payload(p + 12, length);
    const uint32_t stored = get_u32(p + 12 + length);
    const uint32_t computed = util::masked_crc32c(payload.data(), payload.size());
    if (stored != computed) {
      std::ostringstream msg;
      msg << "payload checksum mismatch (stored " << std::hex << stored << ", computed " << computed
          << ")";
      issues.push_back({ReadIssue::Kind::kCorrupt, file, pos, msg.str()});
    } else {
      on_payload(pos, payload);
      good_end = pos + kFrameOverhead + length;
    }
    pos += kFrameOverhead + length;
  }
  return good_end;
}

// A frame layout whose fields each hold at least one value and whose frame fits in one record
// (kMaxPayload bytes of float32); so frames x frame size never wraps around in 64 bits.
void check_layout(const FileHeader& header, const std::string& file) {
  uint64_t values = 0;
  for (const auto& f : header.fields()) {
    if (f.size() == 0) throw TrajectoryError(file + ": field '" + f.name() + "' has size 0");
    values += f.size();
  }
  if (values == 0 || values > kMaxPayload / sizeof(float)) {
    throw TrajectoryError(file + ": frame layout of " + std::to_string(values) +
                          " values per frame (at least 1, at most " +
                          std::to_string(kMaxPayload / sizeof(float)) + ")");
  }
}

// Parses the header record at the start of `bytes`; throws when the first frame is no header.
FileHeader read_header(std::string_view bytes, const std::string& file) {
  if (bytes.size() < 12 || !head_valid(bytes.data())) {
    throw TrajectoryError(file + ": not a trajectory file (no valid frame head at offset 0; " +
                          std::to_string(bytes.size()) + " bytes)");
  }
  const uint32_t length = get_u32(bytes.data() + 4);
  if (bytes.size() < kFrameOverhead + length) {
    throw TrajectoryError(file + ": header record cut off (file of " +
                          std::to_string(bytes.size()) + " bytes)");
  }
  const std::string_view payload(bytes.data() + 12, length);
  if (get_u32(bytes.data() + 12 + length) != util::masked_crc32c(payload.data(), payload.size())) {
    throw TrajectoryError(file + ": header record at offset 0 fails its checksum");
  }
  Record record;
  if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
      !record.has_header()) {
    throw TrajectoryError(file + ": the first record is not a file header");
  }
  if (record.header().format_version() != kFormatVersion) {
    throw TrajectoryError(file + ": format version " +
                          std::to_string(record.header().format_version()) +
                          ", this reader reads " + std::to_string(kFormatVersion));
  }
  check_layout(record.header(), file);
  return record.header();
}

}  // namespace

std::string hex_hash(uint64_t hash) {
  std::ostringstream s;
  s << std::hex << hash;
  return s.str();
}

std::string layout_text(const FileHeader& h) {
  std::string s;
  for (const auto& f : h.fields()) s += f.name() + "[" + std::to_string(f.size()) + "] ";
  return s.empty() ? "(none)" : s.substr(0, s.size() - 1);
}

void check_compatible(const FileHeader& a, const FileHeader& b, const std::string& file) {
  if (a.model_hash() != b.model_hash() || layout_text(a) != layout_text(b) ||
      a.decimation() != b.decimation()) {
    std::ostringstream msg;
    msg << file << ": incompatible with the first shard: model hash " << std::hex << b.model_hash()
        << " vs " << a.model_hash() << std::dec << ", fields '" << layout_text(b) << "' vs '"
        << layout_text(a) << "', decimation " << b.decimation() << " vs " << a.decimation();
    throw TrajectoryError(msg.str());
  }
}

namespace {

// `f` holds 12 placeholder bytes followed by a payload: writes the frame head over the
// placeholder and appends the payload's checksum, making `f` one complete frame.
void seal_frame(std::string& f) {
  const size_t length = f.size() - 12;
  if (length > kMaxPayload) {
    throw TrajectoryError("record of " + std::to_string(length) + " bytes exceeds the " +
                          std::to_string(kMaxPayload) + "-byte limit");
  }
  std::string head;
  put_u32(head, kFrameMagic);
  put_u32(head, static_cast<uint32_t>(length));
  put_u32(head, util::masked_crc32c(head.data(), 8));
  f.replace(0, 12, head);
  put_u32(f, util::masked_crc32c(f.data() + 12, length));
}

}  // namespace

std::string encode_frame(const std::string& payload) {
  std::string out;
  out.reserve(payload.size() + kFrameOverhead);
  out.assign(12, '\0');
  out += payload;
  seal_frame(out);
  return out;
}

FileHeader read_file_header(const std::string& path) {
  const int fd = open_regular(path);
  std::string bytes(12, '\0');
  ssize_t n = ::pread(fd, bytes.data(), 12, 0);
  if (n == 12 && head_valid(bytes.data())) {
    bytes.resize(kFrameOverhead + get_u32(bytes.data() + 4));
    n = ::pread(fd, bytes.data() + 12, bytes.size() - 12, 12);
    bytes.resize(12 + static_cast<size_t>(std::max<ssize_t>(n, 0)));
  } else {
    bytes.resize(static_cast<size_t>(std::max<ssize_t>(n, 0)));
  }
  ::close(fd);
  return read_header(bytes, path);
}

FrameLayout::FrameLayout(const FileHeader& header) {
  for (const auto& f : header.fields()) {
    fields_.emplace_back(f.name(), f.size());
    offsets_.push_back(frame_size_);
    frame_size_ += f.size();
  }
}

std::optional<size_t> FrameLayout::offset(const std::string& name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].first == name) return offsets_[i];
  }
  return std::nullopt;
}

size_t FrameLayout::size(const std::string& name) const {
  for (const auto& [n, s] : fields_) {
    if (n == name) return s;
  }
  std::string names;
  for (const auto& f : fields_) names += (names.empty() ? "" : ", ") + f.first;
  throw TrajectoryError("no field '" + name + "' in the frame layout (fields: " + names + ")");
}

std::optional<SyncPolicy> parse_sync_policy(const std::string& text) {
  if (text == "episode") return SyncPolicy::kEpisode;
  if (text == "close") return SyncPolicy::kClose;
  if (text == "none") return SyncPolicy::kNone;
  return std::nullopt;
}

TrajectoryWriter::TrajectoryWriter(const std::string& path, FileHeader header, SyncPolicy sync,
                                   bool append)
    : path_(path), sync_(sync) {
  header.set_format_version(kFormatVersion);
  header_ = header;
  layout_ = FrameLayout(header_);
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (exists && !append) {
    throw TrajectoryError(path + ": exists; refusing to overwrite recorded trajectories");
  }
  if (exists) {
    const std::string bytes = read_whole(path);
    const FileHeader old = read_header(bytes, path);
    check_compatible(old, header_, path);
    header_ = old;
    std::vector<ReadIssue> issues;
    const uint64_t end = scan_frames(bytes, path, issues, [](uint64_t, std::string_view) {});
    fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw TrajectoryError(path + ": cannot open for appending: " + system_error_text());
    // Cut a torn tail (bytes after the last intact frame that form no frame) so that appended
    // records follow a complete one. Corrupt frames in the middle stay: readers skip them.
    if (end < bytes.size() && !issues.empty() && issues.back().kind == ReadIssue::Kind::kTornTail) {
      if (::ftruncate(fd_, static_cast<off_t>(issues.back().offset)) != 0) {
        const std::string err = system_error_text();
        ::close(fd_);
        throw TrajectoryError(path + ": cannot cut the torn tail: " + err);
      }
    }
    if (::lseek(fd_, 0, SEEK_END) < 0) {
      ::close(fd_);
      throw TrajectoryError(path + ": cannot seek: " + system_error_text());
    }
    return;
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw TrajectoryError(path + ": cannot create: " + system_error_text());
  Record record;
  *record.mutable_header() = header_;
  write_all(encode_frame(record.SerializeAsString()));
  this->sync();
  // Make the new directory entry durable too.
  const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

TrajectoryWriter::~TrajectoryWriter() {
  try {
    close();
  } catch (...) {
  }
}

void TrajectoryWriter::write_all(const std::string& bytes) {
  if (fd_ < 0) throw TrajectoryError(path_ + ": writer is closed");
  // Where this record starts: a write that fails part-way (a full disk, a file size limit) is cut
  // off again, so the file ends with its last whole record and a later append follows it.
  const off_t start = ::lseek(fd_, 0, SEEK_CUR);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? system_error_text() : "no progress";
      if (start >= 0 && ::ftruncate(fd_, start) == 0) ::lseek(fd_, start, SEEK_SET);
      throw TrajectoryError(path_ + ": write failed (" + why + "); the file keeps its " +
                            "records before offset " + std::to_string(start));
    }
    done += static_cast<size_t>(n);
  }
}

void TrajectoryWriter::append(const Episode& episode) {
  const size_t expected = static_cast<size_t>(episode.num_frames()) * layout_.frame_size();
  if (static_cast<size_t>(episode.data_size()) != expected) {
    throw TrajectoryError(path_ + ": episode " + std::to_string(episode.episode_id()) + " has " +
                          std::to_string(episode.data_size()) + " values, expected " +
                          std::to_string(episode.num_frames()) + " frames x " +
                          std::to_string(layout_.frame_size()));
  }
  // The frame is built in one reused buffer, without copying the episode into a Record: a Record
  // holding an episode is the tag of field 2 (length-delimited), the length, the episode's bytes.
  const size_t size = episode.ByteSizeLong();
  if (size + 16 > kMaxPayload) {
    throw TrajectoryError(path_ + ": episode " + std::to_string(episode.episode_id()) +
                          " is too large for one record (" + std::to_string(size) + " bytes)");
  }
  std::string& f = frame_buf_;
  f.assign(12, '\0');
  f.push_back(static_cast<char>((2 << 3) | 2));
  for (uint64_t v = size;; v >>= 7) {
    if (v < 0x80) {
      f.push_back(static_cast<char>(v));
      break;
    }
    f.push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  if (!episode.AppendToString(&f)) throw TrajectoryError(path_ + ": cannot serialize an episode");
  seal_frame(f);
  write_all(f);
  ++episodes_written_;
  if (sync_ == SyncPolicy::kEpisode) sync();
}

void TrajectoryWriter::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0) {
    throw TrajectoryError(path_ + ": fsync failed: " + system_error_text());
  }
}

void TrajectoryWriter::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  if (sync_ != SyncPolicy::kNone) sync();
  fd_ = -1;
  if (::close(fd) != 0) throw TrajectoryError(path_ + ": close failed: " + system_error_text());
}

TrajectoryCorpus::TrajectoryCorpus(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == kFileSuffix) {
        shards_.push_back(entry.path().string());
      }
    }
    std::sort(shards_.begin(), shards_.end());
    if (shards_.empty()) {
      throw TrajectoryError(path + ": directory holds no " + std::string(kFileSuffix) + " files");
    }
  } else if (fs::is_regular_file(path, ec)) {
    shards_.push_back(path);
  } else {
    throw TrajectoryError(path + ": no such trajectory file or directory");
  }
  for (size_t i = 0; i < shards_.size(); ++i) index_file(i);
}

void TrajectoryCorpus::index_file(size_t shard) {
  const std::string& file = shards_[shard];
  const std::string bytes = read_whole(file);
  const FileHeader header = read_header(bytes, file);
  if (shard == 0) {
    header_ = header;
    layout_ = FrameLayout(header_);
  } else {
    check_compatible(header_, header, file);
  }
  bool first = true;
  scan_frames(bytes, file, issues_, [&](uint64_t offset, std::string_view payload) {
    if (first) {  // the header, parsed above
      first = false;
      return;
    }
    Record record;
    if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
        !record.has_episode()) {
      issues_.push_back({ReadIssue::Kind::kCorrupt, file, offset,
                         "record with a valid checksum is not an episode"});
      return;
    }
    const Episode& e = record.episode();
    if (static_cast<size_t>(e.data_size()) != e.num_frames() * layout_.frame_size()) {
      issues_.push_back({ReadIssue::Kind::kCorrupt, file, offset,
                         "episode " + std::to_string(e.episode_id()) + " holds " +
                             std::to_string(e.data_size()) + " values, expected " +
                             std::to_string(e.num_frames()) + " x " +
                             std::to_string(layout_.frame_size())});
      return;
    }
    episodes_.push_back({shard, offset, static_cast<uint32_t>(payload.size()), e.episode_id(),
                         e.seed(), e.start_state_id(), e.branch_id(), e.num_frames()});
  });
}

uint64_t TrajectoryCorpus::total_frames() const {
  uint64_t n = 0;
  for (const auto& e : episodes_) n += e.num_frames;
  return n;
}

Episode TrajectoryCorpus::read(size_t i) const {
  if (i >= episodes_.size()) {
    throw TrajectoryError("episode index " + std::to_string(i) + " out of range (" +
                          std::to_string(episodes_.size()) + " episodes)");
  }
  const EpisodeInfo& info = episodes_[i];
  const std::string& file = shards_[info.shard];
  const int fd = open_regular(file);
  std::string frame(kFrameOverhead + info.length, '\0');
  size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n = ::pread(fd, frame.data() + done, frame.size() - done,
                              static_cast<off_t>(info.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  const std::string where = file + " at offset " + std::to_string(info.offset);
  if (done != frame.size() || !head_valid(frame.data()) ||
      get_u32(frame.data() + 4) != info.length ||
      get_u32(frame.data() + 12 + info.length) !=
          util::masked_crc32c(frame.data() + 12, info.length)) {
    throw TrajectoryError(where + ": record changed or damaged since the file was indexed");
  }
  Record record;
  if (!record.ParseFromArray(frame.data() + 12, static_cast<int>(info.length)) ||
      !record.has_episode()) {
    throw TrajectoryError(where + ": not an episode record");
  }
  return record.episode();
}

std::optional<size_t> TrajectoryCorpus::find(uint64_t episode_id) const {
  for (size_t i = 0; i < episodes_.size(); ++i) {
    if (episodes_[i].episode_id == episode_id) return i;
  }
  return std::nullopt;
}

std::vector<size_t> TrajectoryCorpus::branch_order() const {
  std::vector<size_t> order(episodes_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = episodes_[a];
    const auto& y = episodes_[b];
    return std::tie(x.start_state_id, x.branch_id, x.episode_id) <
           std::tie(y.start_state_id, y.branch_id, y.episode_id);
  });
  return order;
}

std::string TrajectoryCorpus::stats_json() const {
  uint64_t min_frames = episodes_.empty() ? 0 : UINT64_MAX, max_frames = 0;
  std::vector<uint32_t> start_states;
  for (const auto& e : episodes_) {
    min_frames = std::min<uint64_t>(min_frames, e.num_frames);
    max_frames = std::max<uint64_t>(max_frames, e.num_frames);
    start_states.push_back(e.start_state_id);
  }
  std::sort(start_states.begin(), start_states.end());
  start_states.erase(std::unique(start_states.begin(), start_states.end()), start_states.end());
  auto fields = util::Json::array();
  for (const auto& [name, size] : layout_.fields()) {
    fields.push(util::Json::object().set("name", name).set("size", size).compact());
  }
  auto issues = util::Json::array();
  for (const auto& is : issues_) {
    issues.push(util::Json::object()
                    .set("kind", is.kind_name())
                    .set("file", is.file)
                    .set("offset", is.offset)
                    .set("message", is.message)
                    .compact());
  }
  auto stats =
      util::Json::object()
          .set("format", "trajectory")
          .set("format_version", header_.format_version())
          .set("model_name", header_.model_name())
          .set("model_hash", hex_hash(header_.model_hash()))
          .set("timestep", header_.timestep())
          .set("decimation", header_.decimation())
          .set("shards", shards_.size())
          .set("episodes", episodes_.size())
          .set("frames", total_frames())
          .set("frames_per_episode",
               util::Json::object().set("min", min_frames).set("max", max_frames).compact())
          .set("start_states", start_states.size())
          .set("frame_size", layout_.frame_size())
          .set("fields", std::move(fields))
          .set("issues", std::move(issues));
  return stats.dump() + "\n";
}

std::vector<float> field_values(const Episode& episode, const FrameLayout& layout,
                                const std::string& field) {
  const size_t size = layout.size(field);
  const size_t offset = *layout.offset(field);
  std::vector<float> out;
  out.reserve(episode.num_frames() * size);
  for (uint32_t t = 0; t < episode.num_frames(); ++t) {
    const float* frame = episode.data().data() + t * layout.frame_size();
    out.insert(out.end(), frame + offset, frame + offset + size);
  }
  return out;
}

}  // namespace ebm::trajectory
