#include "ebm/report/html.h"

#include <sstream>

#include "ebm/util/markup.h"

namespace ebm::report {

std::string html_escape(const std::string& s) { return util::escape_markup(s); }

HtmlPage::HtmlPage(const std::string& title) : title_(title) {
  body_ = "<h1>" + html_escape(title) + "</h1>\n";
}

HtmlPage& HtmlPage::heading(const std::string& text, int level) {
  const std::string l = std::to_string(level);
  body_ += "<h" + l + ">" + html_escape(text) + "</h" + l + ">\n";
  return *this;
}

HtmlPage& HtmlPage::paragraph(const std::string& text) {
  body_ += "<p>" + html_escape(text) + "</p>\n";
  return *this;
}

HtmlPage& HtmlPage::raw(const std::string& html) {
  body_ += html + "\n";
  return *this;
}

HtmlPage& HtmlPage::table(const std::vector<std::string>& header,
                          const std::vector<std::vector<std::string>>& rows) {
  body_ += "<table><tr>";
  for (const auto& h : header) body_ += "<th>" + html_escape(h) + "</th>";
  body_ += "</tr>\n";
  for (const auto& r : rows) {
    body_ += "<tr>";
    for (const auto& c : r) body_ += "<td>" + html_escape(c) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
  return *this;
}

HtmlPage& HtmlPage::image(const std::string& relative_path, int width) {
  body_ += "<p><img src=\"" + html_escape(relative_path) + "\"" +
           (width > 0 ? " width=\"" + std::to_string(width) + "\"" : std::string()) + "></p>\n";
  return *this;
}

std::string HtmlPage::str() const {
  return "<!doctype html><html><head><meta charset=\"utf-8\"><title>" + html_escape(title_) +
         "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
         "text-align:right}th:first-child,td:first-child{text-align:left}img{image-rendering:"
         "pixelated}</style></head><body>\n" +
         body_ + "</body></html>\n";
}

}  // namespace ebm::report
