// Durable file writes: results are files, and a crash must never leave a half-written one in
// place of a good one.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ebm::util {

// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename over
// `path`, fsync of the folder. Creates missing parent folders. Throws std::runtime_error naming
// the path and the system error.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Opens `path` read-only and returns its descriptor (the caller closes it), after checking that it
// is a regular file: a directory, FIFO or device (/dev/zero, /dev/stdin) would make a reader hang
// or read without end. Throws std::runtime_error naming the path and what it is instead.
int open_regular_file(const std::string& path);

// The size of a regular file (see open_regular_file), for readers that hand the path to a library
// (libmatio) and bound what it may allocate first.
uint64_t read_file_size(const std::string& path);

// Reads a whole regular file (see open_regular_file); throws std::runtime_error naming the path
// when it cannot.
std::string read_file(const std::string& path);

// Runs `call` and rethrows a std::runtime_error it throws as `Error` (a reader's own error type,
// so that its callers catch one type per format), keeping the message naming the file.
template <typename Error, typename Call>
auto rethrow_as(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const Error&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw Error(e.what());
  }
}

}  // namespace ebm::util
