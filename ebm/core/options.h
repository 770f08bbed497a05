// What every options struct of the core shares: one table per enum that maps its values to the
// names configs and files use, and the error a struct's validate() throws for a bad field (the
// config reader turns it into an error at the key's file:line; code that builds options by hand
// gets it from the constructor that validates them).
#pragma once

#include <cstddef>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ebm {

// One enum value and its name in configs and files.
template <typename E>
struct EnumName {
  E value;
  const char* name;
};

template <typename E, size_t N>
const char* enum_name(const EnumName<E> (&table)[N], E value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  throw std::logic_error("an enum value without a name");
}

template <typename E, size_t N>
std::optional<E> enum_from_name(const EnumName<E> (&table)[N], std::string_view name) {
  for (const auto& entry : table) {
    if (name == entry.name) return entry.value;
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::vector<std::string> enum_names(const EnumName<E> (&table)[N]) {
  std::vector<std::string> out;
  for (const auto& entry : table) out.emplace_back(entry.name);
  return out;
}

// A field of an options struct outside its valid range: "<section>.<key> must be <requirement>,
// got <value>".
class OptionError : public std::invalid_argument {
 public:
  OptionError(const std::string& section, std::string key, std::string requirement,
              const std::string& value)
      : std::invalid_argument(section + "." + key + " must be " + requirement + ", got " + value),
        key_(std::move(key)),
        requirement_(std::move(requirement)) {}
  const std::string& key() const { return key_; }
  const std::string& requirement() const { return requirement_; }

 private:
  std::string key_, requirement_;
};

// Throws OptionError for `key` of `section` unless ok.
template <typename T>
void require_option(bool ok, const char* section, const char* key, const char* requirement,
                    const T& value) {
  if (ok) return;
  std::ostringstream text;
  text << value;
  throw OptionError(section, key, requirement, text.str());
}

}  // namespace ebm
