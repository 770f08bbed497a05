// The fuzz input as a file the parsers can open by path: an anonymous in-memory file
// (memfd_create) named through /proc/self/fd, so nothing touches the disk and the readers take
// their real path (open, fstat, pread, mmap).
#pragma once

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace ebm::fuzz {

class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(::memfd_create("fuzz", MFD_CLOEXEC)) {
    size_t done = 0;
    while (fd_ >= 0 && done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
  ~MemoryFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// The number of open file descriptors: a parser that returns (or throws) with more open than it
// found has leaked one, which in a long-running process ends in EMFILE.
inline int open_descriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  int n = 0;
  while (::readdir(dir)) ++n;
  ::closedir(dir);
  return n;
}

// Runs `parse` and aborts (a libFuzzer finding) when it leaked a file descriptor.
template <typename Parse>
void without_descriptor_leaks(Parse&& parse) {
  const int before = open_descriptors();
  parse();
  if (open_descriptors() != before) std::abort();
}

}  // namespace ebm::fuzz
