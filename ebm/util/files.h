// Durable file writes: results are files, and a crash must never leave a half-written one in
// place of a good one.
#pragma once

#include <string>
#include <string_view>

namespace ebm::util {

// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename over
// `path`, fsync of the folder. Creates missing parent folders. Throws std::runtime_error naming
// the path and the system error.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file; throws std::runtime_error naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace ebm::util
