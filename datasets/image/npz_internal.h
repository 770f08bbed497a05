// Shared pieces of the readers of datasets/image (internal: included by this folder's sources,
// never by users of npz.h, codecs.h or image_dataset.h).
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "datasets/image/npz.h"
#include "ebm/util/files.h"

namespace ebm::data::detail {

// Throws DatasetError "where: what".
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw DatasetError(where + ": " + what);
}

// The unsigned little-endian integer in the n bytes at p.
inline uint64_t le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// util::open_regular_file and util::read_file with this library's error type.
inline int open_regular(const std::string& path) {
  return util::rethrow_as<DatasetError>([&] { return util::open_regular_file(path); });
}
inline std::string read_regular_file(const std::string& path) {
  return util::rethrow_as<DatasetError>([&] { return util::read_file(path); });
}

// Reads exactly n bytes at `offset` of descriptor fd; a short file is an error naming `where`, the
// offset and where the file ended.
void pread_all(int fd, void* buf, size_t n, uint64_t offset, const std::string& where);

// A zlib stream being inflated (window_bits as inflateInit2 takes them: -15 raw deflate, 31
// gzip, 15 zlib), ended however the reading ends: errors, and callers' callbacks, may throw in
// the middle of it.
struct Inflater {
  Inflater(int window_bits, const std::string& where) {
    if (inflateInit2(&stream, window_bits) != Z_OK) fail(where, "zlib init failed");
  }
  ~Inflater() { inflateEnd(&stream); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream stream{};
};

}  // namespace ebm::data::detail
