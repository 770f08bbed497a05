// A fresh, empty folder under the system temp dir for one test, named after the test and the
// process (CTest runs tests in parallel processes).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace ebm::testing {

inline std::string FreshTempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ebm_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace ebm::testing
