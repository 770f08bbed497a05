// A fresh, empty folder under the system temp dir for one test, named after the test and the
// process (CTest runs tests in parallel processes). The folders a test program made are removed
// when it exits after every test passed; a failed run keeps them for inspection, and so does
// EBM_KEEP_TEST_DIRS=1.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace ebm::testing {

// The folders of this process, removed at its normal exit (not in a forked child's).
class TempDirs {
 public:
  static TempDirs& instance() {
    static TempDirs dirs;
    return dirs;
  }
  void add(const std::filesystem::path& dir) {
    const std::lock_guard<std::mutex> lock(mutex_);
    dirs_.push_back(dir);
  }
  ~TempDirs() {
    const char* keep = std::getenv("EBM_KEEP_TEST_DIRS");
    if (::getpid() != owner_ || (keep && std::string(keep) == "1") ||
        !::testing::UnitTest::GetInstance()->Passed()) {
      return;
    }
    for (const auto& dir : dirs_) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }

 private:
  TempDirs() : owner_(::getpid()) {}
  pid_t owner_;
  std::mutex mutex_;
  std::vector<std::filesystem::path> dirs_;
};

inline std::string FreshTempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ebm_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  TempDirs::instance().add(dir);
  return dir.string();
}

}  // namespace ebm::testing
