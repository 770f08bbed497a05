// Archive files: every LibTorch archive the project writes to disk (checkpoints, trained models,
// generators, cached experts and classifiers) goes through this pair. A LibTorch archive is a zip;
// the bytes are sealed with a CRC32C of the whole file in the zip's comment (so the file stays a
// zip that LibTorch, PyTorch and unzip read) and written atomically. Reading refuses what is not a
// regular file and a sealed file whose checksum fails, naming the file, before LibTorch parses a
// byte of it: a flipped byte inside a tensor is an error, never silently different weights.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "ebm/core/archive_fwd.h"

namespace ebm {

// Serialises `archive`, seals it and writes it to `path` atomically (util::write_file_atomic).
void write_archive_file(const std::string& path, torch::serialize::OutputArchive& archive);

// The bytes write_archive_file writes for a serialised archive: the zip with its comment set to
// "ebm-crc32c:<8 hex digits>", the CRC32C of everything before the comment. Throws
// std::runtime_error when `zip` does not end with a comment-free end-of-central-directory record.
std::string seal_archive(std::string zip);

// Reads `path` into `archive` on `device`. Throws std::runtime_error naming the file when it is
// missing, not a regular file, sealed with a checksum its bytes fail, or not a LibTorch archive.
// Archives without a seal (written before it existed) are read unchecked.
void read_archive_file(const std::string& path, torch::serialize::InputArchive& archive,
                       c10::Device device = c10::kCPU);

}  // namespace ebm
