#include "ebm/core/config.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <utility>

#include "ebm/util/files.h"

namespace ebm {

namespace {

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

template <typename T>
const char* type_name();
// 2^53: integers beyond it are not exact in YAML's numbers (read as doubles).
constexpr double kMaxExactInteger = 9007199254740992.0;

template <>
const char* type_name<double>() {
  return "a finite number";
}
template <>
const char* type_name<int64_t>() {
  return "an integer within +-2^53";
}
template <>
const char* type_name<bool>() {
  return "true or false";
}
template <>
const char* type_name<std::string>() {
  return "a string";
}
template <>
const char* type_name<std::vector<double>>() {
  return "a list of finite numbers";
}
template <>
const char* type_name<std::vector<int64_t>>() {
  return "a list of integers";
}
template <>
const char* type_name<std::vector<std::string>>() {
  return "a list of strings";
}

std::string show(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

// yaml-cpp keeps both entries of a key given twice in one mapping and reads the first; a config
// that says `trainer:` twice would lose one silently. Walks every mapping (a loop, not recursion:
// nesting depth is the file's to choose) and refuses the second occurrence with both lines, and
// keys that are lists or mappings (`? [a, b]: 1`), which no reader can name.
void check_unique_keys(const YAML::Node& root, const std::string& name) {
  std::vector<std::pair<YAML::Node, std::string>> todo{{root, ""}};
  while (!todo.empty()) {
    const auto [node, prefix] = todo.back();
    todo.pop_back();
    if (node.IsSequence()) {
      for (const auto& item : node) todo.emplace_back(item, prefix + "[]");
      continue;
    }
    if (!node.IsMap()) continue;
    std::map<std::string, int> first_line;
    for (const auto& kv : node) {
      const int line = kv.first.Mark().line + 1;
      if (!kv.first.IsScalar()) {
        throw ConfigError(name + ":" + std::to_string(line) + ": a key in '" +
                          (prefix.empty() ? "(top level)" : prefix) + "' is " + show(kv.first) +
                          ", not a plain name");
      }
      const std::string key = kv.first.Scalar();
      const auto [it, fresh] = first_line.emplace(key, line);
      if (!fresh) {
        throw ConfigError(name + ":" + std::to_string(line) + ": key '" + join(prefix, key) +
                          "' given twice (first at line " + std::to_string(it->second) + ")");
      }
      todo.emplace_back(kv.second, join(prefix, key));
    }
  }
}

}  // namespace

std::shared_ptr<Config> Config::load_file(const std::string& path,
                                          const std::vector<std::string>& overrides) {
  std::string text;
  try {
    text = util::read_file(path);
  } catch (const std::runtime_error& e) {
    throw ConfigError(std::string(e.what()) + " (reading the config file)");
  }
  return load_string(text, path, overrides);
}

std::shared_ptr<Config> Config::load_string(const std::string& text, const std::string& name,
                                            const std::vector<std::string>& overrides) {
  std::shared_ptr<Config> c(new Config());
  c->name_ = name;
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    const auto line = std::count(text.begin(), text.begin() + static_cast<long>(nul), '\n') + 1;
    throw ConfigError(name + ":" + std::to_string(line) +
                      ": NUL byte in the config (a binary file, or a corrupt one?)");
  }
  try {
    c->root_ = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) +
                      ": YAML syntax error: " + e.msg);
  }
  if (c->root_.IsNull()) c->root_ = YAML::Node(YAML::NodeType::Map);
  if (!c->root_.IsMap()) throw ConfigError(name + ":1: a config must be a mapping of keys");
  check_unique_keys(c->root_, name);
  for (const auto& o : overrides) c->apply_override(o);
  return c;
}

void Config::apply_override(const std::string& assignment) {
  if (assignment.find('\0') != std::string::npos)
    throw ConfigError("--set: NUL byte in '" + assignment.substr(0, assignment.find('\0')) + "'");
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set " + assignment + ": expected key.path=value");
  const std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + assignment + ": value is not valid YAML: " + e.msg);
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part.empty()) throw ConfigError("--set " + assignment + ": empty key in '" + path + "'");
    parts.push_back(part);
  }
  // Walk with explicit node copies (yaml-cpp nodes are handles into the same tree).
  std::vector<YAML::Node> chain{root_};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    } else if (!next.IsMap()) {
      throw ConfigError("--set " + assignment + ": '" +
                        path.substr(0, path.find(parts[i]) + parts[i].size()) +
                        "' is not a mapping");
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
  overridden_.insert(path);
}

std::string Config::location(const YAML::Node& node, const std::string& path) const {
  const auto mark = node.Mark();
  for (const auto& o : overridden_) {
    if (path == o || path.rfind(o + ".", 0) == 0) return "--set " + o;
    // A mapping that only exists because an override created it.
    if (mark.line < 0 && o.rfind(path + ".", 0) == 0) return "--set " + o;
  }
  if (mark.line < 0) return name_;
  return name_ + ":" + std::to_string(mark.line + 1);
}

void Config::check_all_used() const { check_used_below(root_, ""); }

void Config::check_used_below(const YAML::Node& map, const std::string& prefix) const {
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string path = join(prefix, it->first.Scalar());
    if (!used_.count(path)) {
      std::string best;
      size_t best_d = 4;
      for (const auto& k : used_) {
        const size_t d = edit_distance(path, k);
        if (d < best_d) best_d = d, best = k;
      }
      std::string msg = location(it->first, path) + ": unknown key '" + path + "'";
      if (!best.empty()) msg += " (did you mean '" + best + "'?)";
      throw ConfigError(msg);
    }
    if (it->second.IsMap()) check_used_below(it->second, path);
  }
}

std::string Config::dump() const {
  YAML::Emitter out;
  out << root_;
  return std::string(out.c_str()) + "\n";
}

YAML::Node ConfigSection::child(const std::string& key) const {
  if (!node_.IsDefined() || !node_.IsMap()) return YAML::Node();
  // const access does not insert keys.
  const YAML::Node& cnode = node_;
  return cnode[key];
}

bool ConfigSection::has(const std::string& key) const {
  auto n = child(key);
  return n.IsDefined() && !n.IsNull();
}

std::vector<std::string> ConfigSection::keys() const {
  std::vector<std::string> out;
  if (!node_.IsDefined() || !node_.IsMap()) return out;
  for (const auto& kv : node_) out.push_back(kv.first.as<std::string>());
  return out;
}

bool ConfigSection::is_null(const std::string& key) const {
  config_->mark_used(path(key));
  auto n = child(key);
  return n.IsDefined() && n.IsNull();
}

std::string ConfigSection::path(const std::string& key) const { return join(prefix_, key); }

std::string ConfigSection::where(const std::string& key) const {
  if (key.empty()) return config_->location(node_, prefix_);
  auto n = child(key);
  return config_->location(n.IsDefined() ? n : node_, path(key));
}

void ConfigSection::check(bool ok, const std::string& key, const std::string& requirement) const {
  if (ok) return;
  auto n = child(key);
  throw ConfigError(where(key) + ": " + path(key) + " must be " + requirement + ", got " +
                    (n.IsDefined() ? show(n) : "its default"));
}

ConfigSection ConfigSection::section(const std::string& key) const {
  config_->mark_used(path(key));
  auto n = child(key);
  if (n.IsDefined() && !n.IsNull() && !n.IsMap())
    throw ConfigError(where(key) + ": " + path(key) + ": expected a mapping, found " + show(n));
  return ConfigSection(config_, n.IsDefined() && !n.IsNull() ? n : YAML::Node(), path(key));
}

template <typename T>
T ConfigSection::get(const std::string& key, const T& fallback) const {
  config_->mark_used(path(key));
  auto n = child(key);
  if (!n.IsDefined() || n.IsNull()) return fallback;
  try {
    if constexpr (std::is_same_v<T, int64_t>) {
      // Reject 1.5 for an integer (yaml-cpp would truncate) and what no int64 holds exactly.
      const double d = n.as<double>();
      if (std::floor(d) != d || std::fabs(d) > kMaxExactInteger)
        throw YAML::BadConversion(n.Mark());
      return static_cast<int64_t>(d);
    } else if constexpr (std::is_same_v<T, double>) {
      const double d = n.as<double>();
      if (!std::isfinite(d)) throw YAML::BadConversion(n.Mark());
      return d;
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      auto v = n.as<T>();
      for (const double d : v) {
        if (!std::isfinite(d)) throw YAML::BadConversion(n.Mark());
      }
      return v;
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
      return n.Scalar();
    } else {
      return n.as<T>();
    }
  } catch (const YAML::Exception&) {
    throw ConfigError(where(key) + ": " + path(key) + ": expected " + type_name<T>() + ", found " +
                      show(n));
  }
}

template <typename T>
T ConfigSection::require(const std::string& key) const {
  if (!has(key)) {
    config_->mark_used(path(key));
    throw ConfigError(where() + ": missing required key '" + path(key) + "'");
  }
  return get<T>(key, T{});
}

std::string ConfigSection::choice(const std::string& key, const std::string& fallback,
                                  const std::vector<std::string>& choices) const {
  const auto v = get<std::string>(key, fallback);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    throw ConfigError(where(key) + ": " + path(key) + ": expected one of " + list + ", found '" +
                      v + "'");
  }
  return v;
}

#define EBM_CONFIG_INSTANTIATE(T)                                       \
  template T ConfigSection::get<T>(const std::string&, const T&) const; \
  template T ConfigSection::require<T>(const std::string&) const;
EBM_CONFIG_INSTANTIATE(double)
EBM_CONFIG_INSTANTIATE(int64_t)
EBM_CONFIG_INSTANTIATE(bool)
EBM_CONFIG_INSTANTIATE(std::string)
EBM_CONFIG_INSTANTIATE(std::vector<double>)
EBM_CONFIG_INSTANTIATE(std::vector<int64_t>)
EBM_CONFIG_INSTANTIATE(std::vector<std::string>)
#undef EBM_CONFIG_INSTANTIATE

}  // namespace ebm
