// The zip/npz reader (datasets/image/npz.h): the central directory (zip64 included), every
// member inflated and CRC-checked, and every .npy member read into a buffer sized by its header
// (the reader must refuse a header that promises more than the member holds before the buffer
// is allocated). Only DatasetError may come out.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image/npz.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ebm::fuzz::MemoryFile file(data, size);
  ebm::fuzz::without_descriptor_leaks([&] {
    try {
      const ebm::data::ZipArchive zip(file.path());
      std::vector<char> buffer;
      for (const auto& name : zip.names()) {
        zip.read(name, [](const char*, size_t) { return true; });
        const std::string suffix = ".npy";
        if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix)
          continue;
        const std::string array = name.substr(0, name.size() - suffix.size());
        ebm::data::read_npz_array(zip, array, [&](const ebm::data::NpyHeader& h) {
          buffer.assign(h.count() * h.item_size(), 0);
          return buffer.data();
        });
      }
    } catch (const ebm::data::DatasetError&) {
    }
  });
  return 0;
}
