// IDX files (MNIST, Fashion-MNIST), plain and gzipped (datasets/image/codecs.h): the gzip stream
// is bounded by the size the IDX header announces, then the bytes are decoded both as images and
// as labels. Only DatasetError may come out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "datasets/image/codecs.h"
#include "memory_file.h"
#include "pixel_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ebm::fuzz::MemoryFile file(data, size);
  ebm::fuzz::without_descriptor_leaks([&] {
    std::string bytes;
    try {
      bytes = ebm::data::read_idx_file(file.path());
    } catch (const ebm::data::DatasetError&) {
      return;
    }
    try {
      ebm::fuzz::PixelBuffer pixels;
      ebm::data::decode_idx_images(bytes, file.path(), pixels.sink());
      pixels.checksum();
    } catch (const ebm::data::DatasetError&) {
    }
    try {
      ebm::data::decode_idx_labels(bytes, file.path(), 10);
    } catch (const ebm::data::DatasetError&) {
    }
  });
  return 0;
}
