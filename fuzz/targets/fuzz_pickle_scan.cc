// The pickle structure scan (ebm/util/pickle_scan.h) on raw pickles: every opcode sequence of
// protocols 0 to 5 must end in a depth or a std::runtime_error with its offset, in memory
// proportional to the input, however deep, shared or cyclic the structure it describes.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "ebm/util/pickle_scan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ebm::util::scan_pickle(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.pkl");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
