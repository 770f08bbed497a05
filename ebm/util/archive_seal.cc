#include "ebm/util/archive_seal.h"

#include <cstdio>
#include <stdexcept>

#include "ebm/util/crc32c.h"

namespace ebm::util {

namespace {

constexpr size_t kEndRecord = 22;  // the end-of-central-directory record without its comment
constexpr char kSealPrefix[] = "ebm-crc32c:";
constexpr size_t kSealSize = sizeof(kSealPrefix) - 1 + 8;

bool is_end_record(const std::string& bytes, size_t at) {
  return bytes.compare(at, 4, "PK\x05\x06", 4) == 0;
}

uint16_t comment_length(const std::string& bytes, size_t end_record) {
  return static_cast<uint16_t>(static_cast<unsigned char>(bytes[end_record + 20]) |
                               (static_cast<unsigned char>(bytes[end_record + 21]) << 8));
}

std::string hex8(uint32_t v) {
  char text[9];
  std::snprintf(text, sizeof(text), "%08x", v);
  return text;
}

}  // namespace

bool verify_archive_seal(const std::string& bytes, const std::string& path) {
  if (bytes.size() < kEndRecord + kSealSize) return false;
  const size_t end_record = bytes.size() - kSealSize - kEndRecord;
  if (!is_end_record(bytes, end_record) || comment_length(bytes, end_record) != kSealSize ||
      bytes.compare(bytes.size() - kSealSize, sizeof(kSealPrefix) - 1, kSealPrefix) != 0) {
    return false;
  }
  const std::string stored = bytes.substr(bytes.size() - 8);
  const std::string computed = hex8(util::crc32c(bytes.data(), bytes.size() - kSealSize));
  if (stored != computed) {
    throw std::runtime_error(path + ": checksum mismatch (stored crc32c " + stored +
                             ", the bytes give " + computed + "): the file is corrupt");
  }
  return true;
}

std::string seal_archive(std::string zip) {
  if (zip.size() < kEndRecord || !is_end_record(zip, zip.size() - kEndRecord) ||
      comment_length(zip, zip.size() - kEndRecord) != 0) {
    throw std::runtime_error("seal_archive: not a zip ending in a comment-free end record");
  }
  zip[zip.size() - 2] = static_cast<char>(kSealSize);
  zip[zip.size() - 1] = 0;
  const uint32_t crc = util::crc32c(zip.data(), zip.size());
  return zip + kSealPrefix + hex8(crc);
}

}  // namespace ebm::util
