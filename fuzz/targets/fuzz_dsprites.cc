// The official dSprites npz (datasets/image/codecs.h): the three arrays' headers are checked
// against each other and against their members before anything is allocated, then the image
// values and shape classes. Only DatasetError may come out, and no descriptor may leak.
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
      ebm::data::read_dsprites_npz(file.path(), pixels.sink());
      pixels.checksum();
    } catch (const ebm::data::DatasetError&) {
    }
  });
  return 0;
}
