// The seal on every LibTorch archive the project writes (core/archive_file.h): a LibTorch archive
// is a zip, and its comment carries "ebm-crc32c:<8 hex digits>", the CRC32C of everything before
// the comment. The file stays a zip that LibTorch, PyTorch and unzip read. No LibTorch here: the
// fuzz targets check seals alone.
#pragma once

#include <string>

namespace ebm::util {

// The bytes to write for the serialised archive `zip`: the same zip with its comment set to the
// seal. Throws std::runtime_error when `zip` does not end with a comment-free
// end-of-central-directory record.
std::string seal_archive(std::string zip);

// Verifies the seal of an archive file's `bytes`: true when it holds, false when the file has
// none (written before seals existed); throws std::runtime_error naming `path` and both checksums
// when it fails.
bool verify_archive_seal(const std::string& bytes, const std::string& path);

}  // namespace ebm::util
