// Helpers for tests that compile MJCF strings with engine plugins.
#pragma once

#include <mujoco/mujoco.h>

#include <string>

namespace ebm::testing {

// Parses and compiles an MJCF string; on failure returns null and sets *error (when given) to
// the parser's or compiler's message (which carries plugin warnings).
inline mjModel* CompileXml(const std::string& xml, std::string* error = nullptr) {
  char err[2048] = "";
  mjSpec* spec = mj_parseXMLString(xml.c_str(), nullptr, err, sizeof(err));
  if (!spec) {
    if (error) *error = err;
    return nullptr;
  }
  mjModel* m = mj_compile(spec, nullptr);
  if (!m && error) *error = mjs_getError(spec);
  mj_deleteSpec(spec);
  return m;
}

// A plugin <config> element.
inline std::string PluginConfig(const std::string& key, const std::string& value) {
  return "<config key=\"" + key + "\" value=\"" + value + "\"/>";
}

}  // namespace ebm::testing
