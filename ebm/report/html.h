// Experiment reports: a small HTML page builder for report.html (headings, paragraphs, tables,
// images), written atomically by the caller. metrics.json is built with util::Json.
#pragma once

#include <string>
#include <vector>

namespace ebm::report {

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

// Text for HTML (util::escape_markup).
std::string html_escape(const std::string& s);

}  // namespace ebm::report
