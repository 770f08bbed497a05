// YAML configs (ebm/core/config.h): parsing, the duplicate-key and NUL checks, typed reads of every
// key (as numbers, integers, lists and strings, as the option readers do) and the unknown-key
// check. Only ConfigError may come out. yaml-cpp's own exceptions escaping would be a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ebm/core/config.h"

namespace {

// Reads every key below `s` with each typed accessor; each read may fail with ConfigError.
void read_all(const ebm::ConfigSection& s, int depth) {
  if (depth > 8) return;
  for (const auto& key : s.keys()) {
    auto attempt = [](auto&& read) {
      try {
        read();
      } catch (const ebm::ConfigError&) {
      }
    };
    attempt([&] { s.get<double>(key, 0.0); });
    attempt([&] { s.get<int64_t>(key, 0); });
    attempt([&] { s.get<bool>(key, false); });
    attempt([&] { s.get<std::string>(key, ""); });
    attempt([&] { s.get<std::vector<double>>(key, {}); });
    attempt([&] { s.get<std::vector<int64_t>>(key, {}); });
    attempt([&] { read_all(s.section(key), depth + 1); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto config = ebm::Config::load_string(text, "fuzz.yaml");
    read_all(config->root(), 0);
    config->check_all_used();
    config->dump();
  } catch (const ebm::ConfigError&) {
  }
  return 0;
}
