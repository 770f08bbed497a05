// What the project reads of a checkpoint before LibTorch does: the archive's seal
// (ebm/util/archive_seal.h), every pickle record of the zip through the structure scan that keeps
// deep nesting from LibTorch's unpickler (ebm/util/pickle_scan.h), and best.json as
// CheckpointManager reads it (ebm/util/json.h). The input serves as the archive and as the JSON.
// Only std::runtime_error (DatasetError from the zip reader is one) may come out.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "datasets/image/npz.h"
#include "ebm/util/archive_seal.h"
#include "ebm/util/json.h"
#include "ebm/util/pickle_scan.h"
#include "memory_file.h"

namespace {

bool is_pickle_record(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".pkl") == 0;
}

void read_archive(const std::string& bytes, const std::string& path) {
  ebm::util::verify_archive_seal(bytes, path);
  const ebm::data::ZipArchive zip(path);
  for (const auto& name : zip.names()) {
    if (!is_pickle_record(name)) continue;
    std::string pickle;
    zip.read(name, [&](const char* chunk, size_t n) {
      pickle.append(chunk, n);
      return true;
    });
    ebm::util::scan_pickle(pickle, path + " (" + name + ")");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const ebm::fuzz::MemoryFile file(data, size);
  ebm::fuzz::without_descriptor_leaks([&] {
    try {
      read_archive(bytes, file.path());
    } catch (const std::runtime_error&) {
    }
  });
  try {
    ebm::util::parse_json(bytes, "best.json").at("metric").number();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
