// A PixelSink (datasets/image/codecs.h) into a plain buffer, for the decoder fuzz targets: it
// allocates what the decoder asks for, as the tensor readers do, and the target then reads every
// byte (MemorySanitizer is not run, but ASan catches reads past the end).
#pragma once

#include <cstdint>
#include <vector>

#include "datasets/image/codecs.h"
#include "ebm/util/sizes.h"

namespace ebm::fuzz {

class PixelBuffer {
 public:
  data::PixelSink sink() {
    return [this](const std::vector<int64_t>& shape) {
      bytes_.assign(*util::checked_bytes(shape, 1), 0);
      return bytes_.data();
    };
  }
  uint64_t checksum() const {
    uint64_t sum = 0;
    for (const uint8_t b : bytes_) sum += b;
    return sum;
  }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace ebm::fuzz
