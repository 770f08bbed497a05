// The .npy header parser (datasets/image/npz.h): magic, version, the header dict, dtype and shape,
// with the checked size of the data it announces. Only DatasetError may come out.
#include <cstddef>
#include <cstdint>

#include "datasets/image/npz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ebm::data::NpyHeader header;
  try {
    ebm::data::parse_npy_header(reinterpret_cast<const char*>(data), size, "fuzz.npy", &header);
  } catch (const ebm::data::DatasetError&) {
  }
  return 0;
}
