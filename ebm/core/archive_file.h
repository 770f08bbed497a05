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

// Serialises `archive`, seals it (util/archive_seal.h) and writes it to `path` atomically
// (util::write_file_atomic).
void write_archive_file(const std::string& path, torch::serialize::OutputArchive& archive);

// Reads `path` into `archive` on `device`. Throws std::runtime_error naming the file when it is
// missing, not a regular file, sealed with a checksum its bytes fail, holds a pickle nested deeper
// than util::kMaxPickleDepth (util/pickle_scan.h: checked before LibTorch's unpickler, which would
// overflow the stack), or is not a LibTorch archive. Archives without a seal (written before it
// existed) skip only the checksum.
void read_archive_file(const std::string& path, torch::serialize::InputArchive& archive,
                       c10::Device device = c10::kCPU);

}  // namespace ebm
