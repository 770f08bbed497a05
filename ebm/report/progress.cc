#include "ebm/report/progress.h"

#include <unistd.h>

#include <cmath>
#include <utility>

namespace ebm::report {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const auto total = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", static_cast<long>(total / 3600),
                  static_cast<long>(total / 60 % 60), static_cast<long>(total % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%02ld:%02ld", static_cast<long>(total / 60),
                  static_cast<long>(total % 60));
  }
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::FILE* out, double log_interval)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      tty_(out && ::isatty(::fileno(out))),
      interval_(log_interval),
      start_(std::chrono::steady_clock::now()),
      last_(start_ - std::chrono::hours(1)) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::line(int64_t done, const std::string& fields) const {
  const double t = elapsed();
  const double rate = t > 0 ? done / t : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : -1;
  char buf[256];
  const int pct = total_ > 0 ? static_cast<int>(100.0 * done / total_) : 0;
  std::snprintf(buf, sizeof(buf), "%s %3d%% %ld/%ld [%s<%s, %.2f it/s]", label_.c_str(), pct,
                static_cast<long>(done), static_cast<long>(total_), format_duration(t).c_str(),
                format_duration(eta).c_str(), rate);
  std::string s = buf;
  if (!fields.empty()) s += " " + fields;
  return s;
}

void Progress::update(int64_t done, const std::string& fields) {
  done_ = done;
  if (!out_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (since < (tty_ ? 0.2 : interval_)) return;
  last_ = now;
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s", line(done, fields).c_str());
  } else {
    std::fprintf(out_, "%s\n", line(done, fields).c_str());
  }
  std::fflush(out_);
}

void Progress::finish(const std::string& fields) {
  if (!out_) return;
  std::fprintf(out_, "%s%s\n", tty_ ? "\r\033[K" : "", line(done_ = total_, fields).c_str());
  std::fflush(out_);
}

}  // namespace ebm::report
