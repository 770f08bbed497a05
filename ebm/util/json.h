// The project's one JSON writer and reader (no LibTorch: the record format and the recorder
// plugin use it too). Values keep their object keys in insertion order, so files come out in the
// order the code writes them; numbers are written with 17 significant digits (NaN/Inf as null)
// and integers exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ebm::util {

class Json {
 public:
  enum class Kind { kNull, kBool, kNumber, kInteger, kString, kArray, kObject };

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool v) : kind_(Kind::kBool), bool_(v) {}
  Json(double v) : kind_(Kind::kNumber), number_(v) {}
  Json(int v) : Json(static_cast<long long>(v)) {}
  Json(long v) : Json(static_cast<long long>(v)) {}
  Json(long long v) : kind_(Kind::kInteger), integer_(v) {}
  Json(unsigned v) : Json(static_cast<long long>(v)) {}
  Json(unsigned long v) : Json(static_cast<long long>(v)) {}  // below 2^63
  Json(unsigned long long v) : Json(static_cast<long long>(v)) {}
  Json(const char* v) : kind_(Kind::kString), string_(v) {}
  Json(std::string v) : kind_(Kind::kString), string_(std::move(v)) {}
  Json(std::string_view v) : kind_(Kind::kString), string_(v) {}
  Json(const std::vector<double>& values);
  Json(const std::vector<int64_t>& values);
  Json(const std::vector<std::string>& values);

  // A number written with `decimals` digits after the point (benchmark figures, not data).
  static Json fixed(double v, int decimals) {
    Json j(v);
    j.decimals_ = decimals;
    return j;
  }
  static Json object() { return Json(Kind::kObject); }
  static Json array() { return Json(Kind::kArray); }

  // Builders. set() replaces an existing key in place; push() appends to an array.
  Json& set(const std::string& key, Json value);
  Json& push(Json value);
  // Written on one line (`{"a": 1, "b": [2, 3]}`) even inside a pretty-printed document.
  Json& compact() {
    compact_ = true;
    return *this;
  }

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kNumber || kind_ == Kind::kInteger; }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }

  // Readers; each throws std::runtime_error naming what it expected.
  double number() const;
  int64_t integer() const;  // an integer value (a number with a fraction is refused)
  bool boolean() const;
  const std::string& string() const;
  const Json* find(const std::string& key) const;  // null when absent (objects only)
  const Json& at(const std::string& key) const;    // throws naming the key when absent
  const Json& at(size_t index) const;              // array element
  // Object members or array elements (keys empty), in order.
  const std::vector<std::pair<std::string, Json>>& items() const { return items_; }

  // Pretty-printed with 2-space indentation: objects and arrays of objects or arrays one member
  // per line, arrays of scalars and compact() values on one line. No trailing newline.
  std::string dump() const;

 private:
  explicit Json(Kind kind) : kind_(kind) {}
  void write(std::string& out, int indent, bool one_line) const;

  Kind kind_ = Kind::kNull;
  bool compact_ = false;
  bool bool_ = false;
  double number_ = 0;
  int decimals_ = -1;  // -1: 17 significant digits
  int64_t integer_ = 0;
  std::string string_;
  std::vector<std::pair<std::string, Json>> items_;
  friend class JsonParser;
};

// Parses a JSON document. Errors name `source` (a file name) and the byte offset; nesting deeper
// than 512 levels is refused (no unbounded recursion on hostile input).
Json parse_json(std::string_view text, const std::string& source);

// JSON string literal for `s` (quotes included, control characters escaped).
std::string json_quote(std::string_view s);
// A double as JSON: finite numbers with 17 significant digits; NaN/Inf as null.
std::string json_number(double v);

}  // namespace ebm::util
