#include "ebm/core/archive_file.h"

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/serialize/archive.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "ebm/util/archive_seal.h"
#include "ebm/util/files.h"
#include "ebm/util/pickle_scan.h"

namespace ebm {

namespace {

// Scans every pickle of the archive (data.pkl, constants.pkl) before LibTorch's unpickler, whose
// values free themselves recursively: a crafted file nested too deep, sealed or not, is an error
// naming the file, never a stack overflow.
void check_pickles(const std::string& bytes, const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(
        std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(),
                                                               static_cast<off_t>(bytes.size())));
    for (const auto& name : reader.getAllRecords()) {
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".pkl") != 0) continue;
      const size_t size = reader.getRecordSize(name);
      if (size > bytes.size())  // LibTorch stores its records uncompressed
        throw std::runtime_error(path + ": record " + name + " claims " + std::to_string(size) +
                                 " bytes, more than the file holds");
      std::string pickle(size, '\0');
      reader.getRecord(name, pickle.data(), size);
      util::scan_pickle(pickle, path + " (" + name + ")");
    }
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable LibTorch archive (" +
                             std::string(e.what_without_backtrace()) + ")");
  }
}

}  // namespace

void write_archive_file(const std::string& path, torch::serialize::OutputArchive& archive) {
  std::ostringstream bytes;
  archive.save_to(bytes);
  util::write_file_atomic(path, util::seal_archive(bytes.str()));
}

void read_archive_file(const std::string& path, torch::serialize::InputArchive& archive,
                       c10::Device device) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": not found");
  const std::string bytes = util::read_file(path);
  util::verify_archive_seal(bytes, path);
  check_pickles(bytes, path);
  try {
    archive.load_from(bytes.data(), bytes.size(), device);  // the bytes read, not a second copy
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable LibTorch archive (" +
                             std::string(e.what_without_backtrace()) + ")");
  } catch (const std::exception& e) {  // TorchScript's own errors are no c10::Error
    throw std::runtime_error(path + ": not a readable LibTorch archive (" +
                             std::string(e.what()).substr(0, 300) + ")");
  }
}

}  // namespace ebm
