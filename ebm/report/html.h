// Experiment reports: a JSON object builder for metrics.json and a small HTML page builder for
// report.html (headings, paragraphs, tables, images). Both are written atomically by the caller.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ebm::report {

// An ordered JSON object; values are numbers (NaN/Inf -> null), strings, booleans, number lists
// or nested objects.
class JsonObject {
 public:
  JsonObject& set(const std::string& key, double value);
  JsonObject& set(const std::string& key, int64_t value) {
    return set(key, static_cast<double>(value));
  }
  JsonObject& set(const std::string& key, int value) {
    return set(key, static_cast<double>(value));
  }
  JsonObject& set(const std::string& key, const std::string& value);
  JsonObject& set(const std::string& key, const char* value) {
    return set(key, std::string(value));
  }
  JsonObject& set(const std::string& key, bool value);
  JsonObject& set(const std::string& key, const std::vector<double>& values);
  JsonObject& set(const std::string& key, const JsonObject& value);
  bool empty() const { return items_.empty(); }
  // Pretty-printed with 2-space indentation, ending without a newline.
  std::string dump(int indent = 0) const;

 private:
  JsonObject& put(const std::string& key, std::string raw, const JsonObject* child);
  struct Item {
    std::string key, raw;
    std::vector<JsonObject> child;  // 0 or 1 element
  };
  std::vector<Item> items_;
};

class HtmlPage {
 public:
  explicit HtmlPage(const std::string& title);
  HtmlPage& heading(const std::string& text, int level = 2);
  // Text is escaped; use `raw` for trusted markup.
  HtmlPage& paragraph(const std::string& text);
  HtmlPage& raw(const std::string& html);
  HtmlPage& table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows);
  // An image by its path relative to the page.
  HtmlPage& image(const std::string& relative_path, int width = 0);
  std::string str() const;

 private:
  std::string title_, body_;
};

std::string html_escape(const std::string& s);

}  // namespace ebm::report
