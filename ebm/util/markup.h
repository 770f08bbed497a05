// Escaping text for HTML and XML (element text and double-quoted attribute values).
#pragma once

#include <string>

namespace ebm::util {

// s with & < > " replaced by their entities.
std::string escape_markup(const std::string& s);

}  // namespace ebm::util
