// NumPy's file formats, read without Python: `.npy` arrays, `.npz` archives (zip; stored or
// deflated members, zip64) and a restricted unpickler for the pickled batches of the downsampled
// ImageNet release. No LibTorch here; data are streamed into memory the caller provides, so a
// large member never needs twice its size. Malformed input raises DatasetError naming the file,
// the member or offset, what was expected and what was found.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ebm::data {

// Thrown for unreadable or malformed data files (shared with image_dataset.h).
class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The header of an .npy array.
struct NpyHeader {
  std::string descr;  // NumPy type string, e.g. "|u1", "<i8", "<f8"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  char kind() const { return descr.size() >= 2 ? descr[1] : '?'; }  // 'u', 'i', 'f', 'b'
  size_t item_size() const;                                         // bytes per element
  int64_t count() const;                                            // product of shape
  bool little_endian() const { return !descr.empty() && descr[0] != '>'; }
  std::string shape_text() const;  // "(737280, 64, 64)"
};

// Parses the magic, version and header dict at the start of an .npy stream. Returns the number
// of header bytes, or 0 when `size` bytes are not enough yet. Throws for anything malformed.
size_t parse_npy_header(const char* data, size_t size, const std::string& where, NpyHeader* out);

// A zip archive (what np.savez / np.savez_compressed write), read from its central directory.
class ZipArchive {
 public:
  explicit ZipArchive(const std::string& path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool has(const std::string& name) const { return members_.count(name) > 0; }
  uint64_t uncompressed_size(const std::string& name) const;
  // Streams the member's bytes to `sink` in chunks; `sink` returns false to stop early. Verifies
  // the CRC-32 and the size when the member was read to its end.
  void read(const std::string& name, const std::function<bool(const char*, size_t)>& sink) const;
  std::string read_all(const std::string& name) const;

 private:
  struct Member {
    uint16_t method = 0;
    uint32_t crc = 0;
    uint64_t compressed = 0, uncompressed = 0, local_offset = 0;
  };
  // Reads the end-of-central-directory record (zip64 too) and every member's entry.
  void read_directory();
  // Refuses a member this reader cannot inflate or whose sizes no zip writer could produce.
  void check_member(const std::string& name, const Member& m) const;
  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::map<std::string, Member> members_;
};

// Reads array `name` (member `name`.npy) of an npz: parses its header, calls `dest(header)` for
// where to put count x item_size bytes (little-endian, C order), and streams the data there.
NpyHeader read_npz_array(const ZipArchive& zip, const std::string& name,
                         const std::function<void*(const NpyHeader&)>& dest);
// Only the header of array `name` (inflates just its first bytes).
NpyHeader npz_array_header(const ZipArchive& zip, const std::string& name);

// A value from a restricted pickle: only what pickled dicts of NumPy arrays, lists and numbers
// use. Arrays point into the file's memory map (no copy).
struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kTuple,
    kList,
    kDict,
    kArray,
    kDtype,
    kGlobal
  };
  Kind kind = Kind::kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;                // str; global name "module.name"; dtype descr
  const char* bytes = nullptr;  // bytes or array data
  size_t nbytes = 0;
  std::string owned;  // bytes built by _codecs.encode (protocol 2 arrays)
  std::vector<std::shared_ptr<PickleValue>> items;       // tuple/list; dict as key, value pairs
  NpyHeader array;                                       // kArray: dtype and shape
  const PickleValue* get(const std::string& key) const;  // dict lookup by str key, or null

  PickleValue() = default;
  PickleValue(const PickleValue&) = default;
  PickleValue& operator=(const PickleValue&) = default;
  // Frees nested values with a loop, not recursion: a hostile pickle nested a million levels
  // deep (refused by the unpickler, but built first) must not overflow the stack on the way out.
  ~PickleValue();
};

// A pickle file (protocols 2-5) whose top-level object is a dict of NumPy arrays, lists and
// numbers, memory-mapped. Any opcode or global outside that structure (code execution, object
// construction, persistent ids, out-of-band buffers) is refused with its offset.
class RestrictedPickle {
 public:
  explicit RestrictedPickle(const std::string& path);
  ~RestrictedPickle();
  RestrictedPickle(const RestrictedPickle&) = delete;
  RestrictedPickle& operator=(const RestrictedPickle&) = delete;
  const PickleValue& root() const { return *root_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<PickleValue> root_;
};

}  // namespace ebm::data
