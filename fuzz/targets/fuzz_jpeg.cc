// JPEG images (datasets/image/codecs.h), decoded to grey and to RGB: a header claiming more pixels
// than the file can hold must be refused before the buffer is allocated, damaged data must be an
// error. Only DatasetError may come out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "datasets/image/codecs.h"
#include "pixel_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  for (const int channels : {1, 3}) {
    try {
      ebm::fuzz::PixelBuffer pixels;
      ebm::data::decode_jpeg(bytes, "fuzz.jpeg", channels, pixels.sink());
      pixels.checksum();
    } catch (const ebm::data::DatasetError&) {
    }
  }
  return 0;
}
