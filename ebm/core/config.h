// YAML configs, validated on load: every key a program reads is declared by reading it, and any
// key left unread afterwards (a typo, a key of another version) is an error naming file:line and
// the key path, with the closest known key as a hint. Command-line overrides (`--set a.b=v`) are
// applied to the tree before reading, with the same checks.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/options.h"

namespace ebm {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Config;

// A mapping inside a config, addressed by its key path ("trainer", "model.blocks", ...).
class ConfigSection {
 public:
  // Typed reads. get() returns `fallback` when the key is absent; require() throws. A present key
  // of the wrong type throws ConfigError "file:line: path: expected T, found 'text'".
  template <typename T>
  T get(const std::string& key, const T& fallback) const;
  template <typename T>
  T require(const std::string& key) const;
  // One of `choices` (strings), with the choices listed in the error.
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& choices) const;
  // One of an enum's names (its table in the options' header), as the enum value.
  template <typename E, size_t N>
  E choice(const std::string& key, const EnumName<E> (&names)[N], E fallback) const {
    return *enum_from_name(names, choice(key, enum_name(names, fallback), enum_names(names)));
  }
  // Runs an options struct's validate() and reports its OptionError at the key in this section.
  template <typename Options>
  void validate(const Options& options) const {
    try {
      options.validate();
    } catch (const OptionError& e) {
      check(false, e.key(), e.requirement());
    }
  }
  bool has(const std::string& key) const;
  // The keys of this mapping in file order (empty when absent or not a mapping); reading them
  // marks none as used.
  std::vector<std::string> keys() const;
  // True when the key is present with an explicit null (`key: null` or `key: ~`); marks it read.
  bool is_null(const std::string& key) const;
  // A nested mapping (an empty one when absent).
  ConfigSection section(const std::string& key) const;
  // "file:line" of a key (or of this section when key is empty), for error messages.
  std::string where(const std::string& key = "") const;
  std::string path(const std::string& key) const;
  // Checks a number against a range: throws "where: path must be ..., got v".
  void check(bool ok, const std::string& key, const std::string& requirement) const;

 private:
  friend class Config;
  ConfigSection(const Config* config, YAML::Node node, std::string prefix)
      : config_(config), node_(std::move(node)), prefix_(std::move(prefix)) {}
  YAML::Node child(const std::string& key) const;
  const Config* config_;
  YAML::Node node_;
  std::string prefix_;
};

class Config {
 public:
  // Parses `path`; overrides are "dotted.key=yaml value". Throws ConfigError with file:line.
  static std::shared_ptr<Config> load_file(const std::string& path,
                                           const std::vector<std::string>& overrides = {});
  static std::shared_ptr<Config> load_string(const std::string& text, const std::string& name,
                                             const std::vector<std::string>& overrides = {});

  ConfigSection root() const { return ConfigSection(this, root_, ""); }
  // Throws ConfigError for the first key present in the file that nothing has read.
  void check_all_used() const;
  // The resolved config (overrides applied) as YAML text, for the run directory.
  std::string dump() const;
  // Sets one key as an override does ("dotted.key=yaml value"), e.g. what a run records about
  // itself (launch.world_size) after the config was read.
  void set(const std::string& assignment) { apply_override(assignment); }
  const std::string& name() const { return name_; }

 private:
  friend class ConfigSection;
  Config() = default;
  void apply_override(const std::string& assignment);
  void check_used_below(const YAML::Node& map, const std::string& prefix) const;
  void mark_used(const std::string& path) const { used_.insert(path); }
  std::string location(const YAML::Node& node, const std::string& path) const;

  std::string name_;
  YAML::Node root_;
  std::set<std::string> overridden_;
  mutable std::set<std::string> used_;
};

}  // namespace ebm
