// CIFAR-10 and CIFAR-100 binary records (datasets/image/codecs.h), each input decoded with all
// three layouts (10 classes; 100 fine and 20 coarse labels). Only DatasetError may come out.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image/codecs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  using ebm::data::CifarLayout;
  for (const CifarLayout& layout :
       {CifarLayout::cifar10(), CifarLayout::cifar100(true), CifarLayout::cifar100(false)}) {
    try {
      const int64_t count = ebm::data::cifar_record_count(bytes, "fuzz.bin", layout);
      std::vector<uint8_t> pixels(static_cast<size_t>(count) * 3072);
      std::vector<int64_t> labels(static_cast<size_t>(count));
      ebm::data::decode_cifar_records(bytes, "fuzz.bin", layout, pixels.data(), labels.data());
    } catch (const ebm::data::DatasetError&) {
    }
  }
  return 0;
}
