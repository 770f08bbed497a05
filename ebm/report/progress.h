// Progress display for long work: "label  37% 740/2000 [01:12<02:03, 10.3 it/s] loss=..., E+=...".
// On a terminal it redraws one line (at most 5 times a second); otherwise it prints a line every
// `log_interval` seconds, so logs of CI or nohup runs stay readable.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace ebm::report {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::FILE* out = stderr, double log_interval = 10.0);
  // done: units completed so far; fields: extra text (e.g. "loss=0.12 E+=-0.3").
  void update(int64_t done, const std::string& fields = "");
  // Final line, always printed.
  void finish(const std::string& fields = "");
  double elapsed() const;
  // The line update() would print now (exposed for tests).
  std::string line(int64_t done, const std::string& fields) const;

 private:
  std::string label_;
  int64_t total_;
  std::FILE* out_;
  bool tty_;
  double interval_;
  int64_t done_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string format_duration(double seconds);

}  // namespace ebm::report
