#include "ebm/util/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace ebm::util {

namespace {

constexpr int kMaxDepth = 512;

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::kNull:
      return "null";
    case Json::Kind::kBool:
      return "a boolean";
    case Json::Kind::kNumber:
    case Json::Kind::kInteger:
      return "a number";
    case Json::Kind::kString:
      return "a string";
    case Json::Kind::kArray:
      return "an array";
    case Json::Kind::kObject:
      return "an object";
  }
  return "?";
}

[[noreturn]] void wrong_kind(const char* expected, Json::Kind found) {
  throw std::runtime_error(std::string("JSON: expected ") + expected + ", found " +
                           kind_name(found));
}

std::string fixed_number(double v, int decimals) {
  if (!std::isfinite(v)) return "null";
  char buf[400];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

bool is_container(Json::Kind k) { return k == Json::Kind::kArray || k == Json::Kind::kObject; }

}  // namespace

Json::Json(const std::vector<double>& values) : kind_(Kind::kArray) {
  for (const double v : values) push(v);
}
Json::Json(const std::vector<int64_t>& values) : kind_(Kind::kArray) {
  for (const int64_t v : values) push(v);
}
Json::Json(const std::vector<std::string>& values) : kind_(Kind::kArray) {
  for (const auto& v : values) push(v);
}

Json& Json::set(const std::string& key, Json value) {
  if (kind_ != Kind::kObject) wrong_kind("an object to set a key in", kind_);
  for (auto& [k, v] : items_) {
    if (k == key) {  // replace, keep the position
      v = std::move(value);
      return *this;
    }
  }
  items_.emplace_back(key, std::move(value));
  return *this;
}

Json& Json::push(Json value) {
  if (kind_ != Kind::kArray) wrong_kind("an array to append to", kind_);
  items_.emplace_back(std::string(), std::move(value));
  return *this;
}

double Json::number() const {
  if (kind_ == Kind::kInteger) return static_cast<double>(integer_);
  if (kind_ != Kind::kNumber) wrong_kind("a number", kind_);
  return number_;
}

int64_t Json::integer() const {
  if (kind_ == Kind::kInteger) return integer_;
  if (kind_ != Kind::kNumber) wrong_kind("an integer", kind_);
  if (!(std::trunc(number_) == number_ && std::fabs(number_) < 9.2e18))
    wrong_kind("an integer", kind_);
  return static_cast<int64_t>(number_);
}

bool Json::boolean() const {
  if (kind_ != Kind::kBool) wrong_kind("a boolean", kind_);
  return bool_;
}

const std::string& Json::string() const {
  if (kind_ != Kind::kString) wrong_kind("a string", kind_);
  return string_;
}

const Json* Json::find(const std::string& key) const {
  if (kind_ != Kind::kObject) wrong_kind("an object", kind_);
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Json& Json::at(const std::string& key) const {
  const Json* v = find(key);
  if (!v) throw std::runtime_error("JSON: no key \"" + key + "\"");
  return *v;
}

const Json& Json::at(size_t index) const {
  if (kind_ != Kind::kArray) wrong_kind("an array", kind_);
  if (index >= items_.size()) {
    throw std::runtime_error("JSON: index " + std::to_string(index) + " beyond an array of " +
                             std::to_string(items_.size()));
  }
  return items_[index].second;
}

std::string Json::dump() const {
  std::string out;
  write(out, 0, false);
  return out;
}

void Json::write(std::string& out, int indent, bool one_line) const {
  switch (kind_) {
    case Kind::kNull:
      out += "null";
      return;
    case Kind::kBool:
      out += bool_ ? "true" : "false";
      return;
    case Kind::kNumber:
      out += decimals_ < 0 ? json_number(number_) : fixed_number(number_, decimals_);
      return;
    case Kind::kInteger:
      out += std::to_string(integer_);
      return;
    case Kind::kString:
      out += json_quote(string_);
      return;
    case Kind::kArray:
    case Kind::kObject:
      break;
  }
  const bool object = kind_ == Kind::kObject;
  if (items_.empty()) {
    out += object ? "{}" : "[]";
    return;
  }
  bool nested = object;  // objects go one member per line, arrays only when they hold containers
  for (const auto& item : items_) nested |= is_container(item.second.kind_);
  one_line |= compact_ || !nested;
  const std::string pad(static_cast<size_t>(indent + 2), ' ');
  out += object ? '{' : '[';
  for (size_t i = 0; i < items_.size(); ++i) {
    if (i) out += one_line ? ", " : ",";
    if (!one_line) out += "\n" + pad;
    if (object) out += json_quote(items_[i].first) + ": ";
    items_[i].second.write(out, indent + 2, one_line);
  }
  if (!one_line) out += "\n" + std::string(static_cast<size_t>(indent), ' ');
  out += object ? '}' : ']';
}

// ---------------------------------------------------------------------------------- reading ---

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Json document() {
    Json v = value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(source_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " +
                             what);
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }

  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  void expect(char c) {
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end of input");
    const char c = text_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json(string());
    if (consume("true")) return Json(true);
    if (consume("false")) return Json(false);
    if (consume("null")) return Json();
    return number();
  }

  Json object(int depth) {
    Json out = Json::object();
    ++pos_;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return out;
    }
    std::set<std::string> keys;
    while (true) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a key string");
      std::string key = string();
      if (!keys.insert(key).second) fail("duplicate key \"" + key + "\"");
      expect(':');
      out.items_.emplace_back(std::move(key), value(depth + 1));
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return out;
    }
  }

  Json array(int depth) {
    Json out = Json::array();
    ++pos_;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return out;
    }
    while (true) {
      out.items_.emplace_back(std::string(), value(depth + 1));
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return out;
    }
  }

  unsigned hex4() {
    if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<unsigned>(h - 'A' + 10);
      else
        fail("bad hex digit in a \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++pos_;  // the opening quote
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && consume("\\u")) {
            const unsigned low = hex4();
            if (low < 0xDC00 || low >= 0xE000) fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xD800 && cp < 0xE000) {
            fail("unpaired surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          fail(std::string("bad escape \\") + e);
      }
    }
  }

  Json number() {
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (digits() == 0) fail("expected a value");
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      integral = false;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("expected digits in the exponent");
    }
    const std::string literal(text_.substr(start, pos_ - start));
    if (integral && literal.size() < 19) return Json(std::strtoll(literal.c_str(), nullptr, 10));
    return Json(std::strtod(literal.c_str(), nullptr));
  }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
};

Json parse_json(std::string_view text, const std::string& source) {
  return JsonParser(text, source).document();
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace ebm::util
