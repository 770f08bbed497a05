// Downsampled ImageNet (32x32, 64x64): npz batches streamed straight into the result, or pickled
// batches read by the restricted unpickler from a memory map.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "datasets/image/image_dataset.h"

namespace ebm::data {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DatasetError(where + ": " + what);
}

bool is_npz(const std::string& path) { return fs::path(path).extension() == ".npz"; }

// The batch files of a split, in batch order.
std::vector<std::string> batch_files(const std::string& path, const std::string& split) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  if (!fs::is_directory(path, ec)) fail(path, "no such file or directory");
  std::vector<std::pair<int, std::string>> found;
  const std::regex train(R"(train_data_batch_(\d+)(\.npz)?)"), val(R"(val_data(\.npz)?)");
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    std::smatch m;
    if (split == "train" && std::regex_match(name, m, train)) {
      found.emplace_back(std::stoi(m[1]), e.path().string());
    } else if ((split == "val" || split == "test") && std::regex_match(name, m, val)) {
      found.emplace_back(0, e.path().string());
    }
  }
  if (split != "train" && split != "val" && split != "test") {
    fail(path, "split must be train, val or test, got '" + split + "'");
  }
  if (found.empty()) {
    fail(path, split == "train" ? "no train_data_batch_<k>[.npz] files" : "no val_data[.npz] file");
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 1; i < found.size(); ++i) {
    if (found[i].first == found[i - 1].first) {
      fail(path, "batch " + std::to_string(found[i].first) + " exists twice (" +
                     found[i - 1].second + ", " + found[i].second + ")");
    }
  }
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

int64_t side_of(int64_t row, int resolution, const std::string& where) {
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(row / 3.0)));
  if (side <= 0 || 3 * side * side != row) {
    fail(where, "rows of " + std::to_string(row) + " values are not 3 x R x R images");
  }
  if (resolution > 0 && side != resolution) {
    fail(where, "images are " + std::to_string(side) + "x" + std::to_string(side) + ", expected " +
                    std::to_string(resolution) + "x" + std::to_string(resolution));
  }
  return side;
}

// Labels 1..1000 of any integer dtype -> 0..999, checked.
void store_labels(const char* data, const NpyHeader& h, int64_t n, int64_t* out,
                  const std::string& where) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = 0;
    const char* p = data + i * h.item_size();
    switch (h.item_size()) {
      case 1:
        v = h.kind() == 'i' ? *reinterpret_cast<const int8_t*>(p)
                            : *reinterpret_cast<const uint8_t*>(p);
        break;
      case 2: {
        int16_t a;
        uint16_t b;
        std::memcpy(&a, p, 2);
        std::memcpy(&b, p, 2);
        v = h.kind() == 'i' ? a : b;
        break;
      }
      case 4: {
        int32_t a;
        uint32_t b;
        std::memcpy(&a, p, 4);
        std::memcpy(&b, p, 4);
        v = h.kind() == 'i' ? a : b;
        break;
      }
      case 8:
        std::memcpy(&v, p, 8);
        break;
      default:
        fail(where, "labels of " + std::to_string(h.item_size()) + "-byte integers");
    }
    if (v < 1 || v > 1000) {
      fail(where,
           "label " + std::to_string(v) + " of item " + std::to_string(i) + " is outside 1..1000");
    }
    out[i] = v - 1;
  }
}

struct BatchInfo {
  int64_t count = 0;
  int64_t side = 0;
};

void check_labels_header(const NpyHeader& lh, int64_t n, const std::string& where) {
  if ((lh.kind() != 'i' && lh.kind() != 'u') || lh.count() != n) {
    fail(where, "'labels' must be " + std::to_string(n) + " integers, found " + lh.descr + " " +
                    lh.shape_text());
  }
}

BatchInfo npz_info(const std::string& file, int resolution) {
  ZipArchive zip(file);
  const NpyHeader h = npz_array_header(zip, "data");
  if (h.descr != "|u1" || h.shape.size() != 2) {
    fail(file,
         "'data' must be a 2-D uint8 array (N x 3R^2), found " + h.descr + " " + h.shape_text());
  }
  check_labels_header(npz_array_header(zip, "labels"), h.shape[0], file);
  return {h.shape[0], side_of(h.shape[1], resolution, file)};
}

}  // namespace

ImageDataset load_imagenet_downsampled(const std::string& path, const std::string& split,
                                       int resolution) {
  const auto files = batch_files(path, split);
  // Pass 1: sizes from headers only (npz) or the memory-mapped pickles (kept for pass 2).
  std::vector<BatchInfo> info;
  std::vector<std::unique_ptr<RestrictedPickle>> pickles(files.size());
  int64_t total = 0, side = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    BatchInfo b;
    if (is_npz(files[f])) {
      b = npz_info(files[f], resolution);
    } else {
      pickles[f] = std::make_unique<RestrictedPickle>(files[f]);
      const PickleValue& root = pickles[f]->root();
      const PickleValue* data = root.get("data");
      const PickleValue* labels = root.get("labels");
      if (!data || data->kind != PickleValue::Kind::kArray || data->array.descr != "|u1" ||
          data->array.shape.size() != 2) {
        fail(files[f], "'data' must be a 2-D uint8 array (N x 3R^2)");
      }
      if (!labels ||
          (labels->kind != PickleValue::Kind::kList && labels->kind != PickleValue::Kind::kArray)) {
        fail(files[f], "'labels' must be a list or an integer array");
      }
      b = {data->array.shape[0], side_of(data->array.shape[1], resolution, files[f])};
      pickles[f].reset();  // unmapped now, mapped again in pass 2: one batch mapped at a time
    }
    if (side && b.side != side) {
      fail(files[f], "holds " + std::to_string(b.side) + "x" + std::to_string(b.side) +
                         " images, the first batch " + std::to_string(side) + "x" +
                         std::to_string(side));
    }
    side = b.side;
    total += b.count;
    info.push_back(b);
  }
  ImageDataset ds;
  ds.images = torch::empty({total, 3, side, side}, torch::kUInt8);
  ds.labels = torch::empty({total}, torch::kLong);
  auto* ip = ds.images.data_ptr<uint8_t>();
  auto* lp = ds.labels.data_ptr<int64_t>();
  const int64_t row = 3 * side * side;
  int64_t at = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    const int64_t n = info[f].count;
    if (is_npz(files[f])) {
      ZipArchive zip(files[f]);
      read_npz_array(zip, "data", [&](const NpyHeader&) { return ip + at * row; });
      std::vector<char> raw;
      const NpyHeader lh = read_npz_array(zip, "labels", [&](const NpyHeader& h) {
        raw.resize(static_cast<size_t>(h.count()) * h.item_size());
        return raw.data();
      });
      store_labels(raw.data(), lh, n, lp + at, files[f]);
    } else {
      RestrictedPickle pk(files[f]);
      const PickleValue* data = pk.root().get("data");
      std::memcpy(ip + at * row, data->bytes, static_cast<size_t>(n * row));
      const PickleValue* labels = pk.root().get("labels");
      if (labels->kind == PickleValue::Kind::kArray) {
        check_labels_header(labels->array, n, files[f]);
        store_labels(labels->bytes, labels->array, n, lp + at, files[f]);
      } else {
        if (static_cast<int64_t>(labels->items.size()) != n) {
          fail(files[f], std::to_string(labels->items.size()) + " labels for " + std::to_string(n) +
                             " images");
        }
        for (int64_t i = 0; i < n; ++i) {
          const auto& v = *labels->items[static_cast<size_t>(i)];
          if (v.kind != PickleValue::Kind::kInt || v.i < 1 || v.i > 1000) {
            fail(files[f], "label of item " + std::to_string(i) + " is not an integer in 1..1000");
          }
          lp[at + i] = v.i - 1;
        }
      }
    }
    at += n;
  }
  for (int c = 0; c < 1000; ++c) ds.class_names.push_back(std::to_string(c));
  ds.split = split;
  ds.source = files.front();
  return ds;
}

}  // namespace ebm::data
