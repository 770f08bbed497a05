// SVHN's MATLAB v5 files (datasets/image/codecs.h, through libmatio): the headers of X and y are
// checked before libmatio allocates for their data, then their types, shapes and labels. Only
// DatasetError may come out, and no descriptor may leak.
#include <cstddef>
#include <cstdint>

#include "datasets/image/codecs.h"
#include "memory_file.h"
#include "pixel_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ebm::fuzz::MemoryFile file(data, size);
  ebm::fuzz::without_descriptor_leaks([&] {
    try {
      ebm::fuzz::PixelBuffer pixels;
      ebm::data::read_svhn_mat(file.path(), pixels.sink());
      pixels.checksum();
    } catch (const ebm::data::DatasetError&) {
    }
  });
  return 0;
}
