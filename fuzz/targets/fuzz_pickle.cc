// The restricted unpickler (datasets/image/npz.h, RestrictedPickle): every opcode sequence must
// end in a value or a DatasetError naming the offset; nothing else may come out, and no input may
// execute, recurse without bound or reference more data than it holds. The result is walked as the
// ImageNet loader would (dict lookup, array bytes read).
#include <cstddef>
#include <cstdint>

#include "datasets/image/npz.h"
#include "memory_file.h"

namespace {

// Reads every array byte the value tree points to (ASan checks that they lie inside the file).
uint64_t touch(const ebm::data::PickleValue& v) {
  uint64_t sum = 0;
  for (size_t i = 0; i < v.nbytes; ++i) sum += static_cast<unsigned char>(v.bytes[i]);
  for (const auto& item : v.items) sum += touch(*item);
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ebm::fuzz::MemoryFile file(data, size);
  ebm::fuzz::without_descriptor_leaks([&] {
    try {
      const ebm::data::RestrictedPickle pickle(file.path());
      pickle.root().get("data");
      touch(pickle.root());
    } catch (const ebm::data::DatasetError&) {
    }
  });
  return 0;
}
