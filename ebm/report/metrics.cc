#include "ebm/report/metrics.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "ebm/util/json.h"

namespace ebm::report {

MetricsLog::MetricsLog(const std::string& path)
    : path_(path), file_(std::fopen(path.c_str(), "a")) {
  if (!file_) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
}

MetricsLog::~MetricsLog() { std::fclose(file_); }

void MetricsLog::write(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  auto record = util::Json::object().set("step", step).compact();
  for (const auto& [k, v] : values) record.set(k, v);
  const std::string line = record.dump() + "\n";
  if (std::fputs(line.c_str(), file_) < 0) throw std::runtime_error("cannot write " + path_);
  std::fflush(file_);
}

}  // namespace ebm::report
