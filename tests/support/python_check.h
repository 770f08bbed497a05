// Python's json module reads a metrics.json and evaluates a boolean expression over it (the
// document as `d`): the real client of the files our experiments write.
#pragma once

#include <cstdlib>
#include <string>

namespace ebm::testing {

inline bool PythonCheck(const std::string& json, const std::string& expr) {
  const std::string cmd = std::string(EBM_TEST_PYTHON) +
                          " -c \"import json,sys; d=json.load(open('" + json +
                          "')); sys.exit(0 if (" + expr + ") else 1)\"";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace ebm::testing
