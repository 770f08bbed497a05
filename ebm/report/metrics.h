// metrics.jsonl: one JSON object per line, flushed as written, so a killed run keeps its history.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace ebm::report {

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);  // appends
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& values);

 private:
  std::string path_;
  std::FILE* file_;
};

}  // namespace ebm::report
