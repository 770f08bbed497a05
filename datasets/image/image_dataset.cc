#include "datasets/image/image_dataset.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <utility>

#include "datasets/image/npz_internal.h"

namespace ebm::data {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DatasetError(path + ": " + what);
}

using detail::read_regular_file;

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

// The first existing path among `base` and `base.gz`.
std::string with_optional_gz(const std::string& base) {
  if (fs::exists(base)) return base;
  if (fs::exists(base + ".gz")) return base + ".gz";
  throw DatasetError(base + "[.gz]: not found");
}

}  // namespace

ImageDataset load_idx(const std::string& images_path, const std::string& labels_path,
                      std::vector<std::string> class_names) {
  ImageDataset ds;
  decode_idx_images(read_idx_file(images_path), images_path, into_tensor(ds.images));
  const int64_t k = class_names.empty() ? 256 : static_cast<int64_t>(class_names.size());
  const auto labels = decode_idx_labels(read_idx_file(labels_path), labels_path, k);
  if (static_cast<int64_t>(labels.size()) != ds.size())
    fail(labels_path,
         std::to_string(labels.size()) + " labels for " + std::to_string(ds.size()) + " images");
  ds.labels = torch::tensor(labels, torch::kLong);
  if (class_names.empty()) {
    const int64_t max_label = labels.empty() ? -1 : *std::max_element(labels.begin(), labels.end());
    for (int64_t c = 0; c <= max_label; ++c) class_names.push_back(std::to_string(c));
  }
  ds.class_names = std::move(class_names);
  ds.source = images_path;
  return ds;
}

ImageDataset load_mnist_folder(const std::string& dir, const std::string& split,
                               const std::string& class_set) {
  std::string prefix;
  if (split == "train")
    prefix = "train";
  else if (split == "test")
    prefix = "t10k";
  else
    throw DatasetError(dir + ": split must be 'train' or 'test', got '" + split + "'");
  std::vector<std::string> names;
  if (class_set == "fashion_mnist")
    names = kFashionNames;
  else if (class_set == "mnist")
    names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  auto ds = load_idx(with_optional_gz(dir + "/" + prefix + "-images-idx3-ubyte"),
                     with_optional_gz(dir + "/" + prefix + "-labels-idx1-ubyte"), names);
  ds.split = split;
  return ds;
}

namespace {

ImageDataset load_cifar_records(const std::vector<std::string>& files, const CifarLayout& layout) {
  std::vector<std::string> contents;
  int64_t total = 0;
  for (const auto& f : files) {
    contents.push_back(read_regular_file(f));
    total += cifar_record_count(contents.back(), f, layout);
  }
  ImageDataset ds;
  ds.images = torch::empty({total, 3, 32, 32}, torch::kUInt8);
  ds.labels = torch::empty({total}, torch::kLong);
  int64_t done = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    decode_cifar_records(contents[i], files[i], layout, ds.images.data_ptr<uint8_t>() + done * 3072,
                         ds.labels.data_ptr<int64_t>() + done);
    done += cifar_record_count(contents[i], files[i], layout);
  }
  ds.source = files.front();
  return ds;
}

std::vector<std::string> read_names(const std::string& path, size_t expected) {
  std::vector<std::string> names;
  std::istringstream in(fs::exists(path) ? read_regular_file(path) : std::string());
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != expected) {
    names.clear();
    for (size_t c = 0; c < expected; ++c) names.push_back(std::to_string(c));
  }
  return names;
}

}  // namespace

ImageDataset load_cifar10(const std::string& dir, const std::string& split) {
  std::vector<std::string> files;
  if (split == "train") {
    for (int b = 1; b <= 5; ++b) files.push_back(dir + "/data_batch_" + std::to_string(b) + ".bin");
  } else if (split == "test") {
    files.push_back(dir + "/test_batch.bin");
  } else {
    throw DatasetError(dir + ": split must be 'train' or 'test', got '" + split + "'");
  }
  auto ds = load_cifar_records(files, CifarLayout::cifar10());
  ds.class_names = read_names(dir + "/batches.meta.txt", 10);
  ds.split = split;
  return ds;
}

ImageDataset load_cifar100(const std::string& dir, const std::string& split,
                           const std::string& label_kind) {
  if (split != "train" && split != "test")
    throw DatasetError(dir + ": split must be 'train' or 'test', got '" + split + "'");
  if (label_kind != "fine" && label_kind != "coarse")
    throw DatasetError(dir + ": CIFAR-100 labels are 'fine' or 'coarse', got '" + label_kind + "'");
  const bool fine = label_kind == "fine";
  auto ds = load_cifar_records({dir + "/" + split + ".bin"}, CifarLayout::cifar100(fine));
  ds.class_names = read_names(dir + (fine ? "/fine_label_names.txt" : "/coarse_label_names.txt"),
                              fine ? 100 : 20);
  ds.split = split;
  return ds;
}

ImageDataset load_image_dataset(const std::string& format, const std::string& path,
                                const std::string& split) {
  if (format == "fashion_mnist" || format == "mnist") return load_mnist_folder(path, split, format);
  if (format == "idx") return load_mnist_folder(path, split, "");
  if (format == "cifar10") return load_cifar10(path, split);
  if (format == "cifar100") return load_cifar100(path, split);
  if (format == "imagenet32") return load_imagenet_downsampled(path, split, 32);
  if (format == "imagenet64") return load_imagenet_downsampled(path, split, 64);
  if (format == "dsprites") {
    if (path == "procedural") {
      DSpritesSpec spec;
      spec.count = 10000;
      return generate_dsprites(spec);
    }
    return load_dsprites(path);
  }
  if (format == "folder") return load_image_folder(path);
  if (format == "svhn") return load_svhn(path, split);
  if (format == "sklearn_digits") return load_sklearn_digits(path);
  throw DatasetError("unknown dataset format '" + format +
                     "' (known: fashion_mnist, mnist, idx, cifar10, cifar100, imagenet32, "
                     "imagenet64, dsprites, folder, svhn, sklearn_digits)");
}

ImageDataset load_sklearn_digits(const std::string& path) {
  // scikit-learn's digits.csv inflates to about 0.5 MB; 64 MiB is far beyond any such table.
  const std::string text = read_maybe_gzipped(path, {}, uint64_t{64} << 20);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    std::vector<int64_t> values;
    size_t a = 0;
    while (a <= line.size()) {
      size_t b = line.find(',', a);
      if (b == std::string::npos) b = line.size();
      const std::string field = line.substr(a, b - a);
      char* stop = nullptr;
      const double v = std::strtod(field.c_str(), &stop);
      if (field.empty() || stop == field.c_str())
        throw DatasetError(path + ":" + std::to_string(line_no) + ": field " +
                           std::to_string(values.size() + 1) + " is not a number: '" + field + "'");
      values.push_back(static_cast<int64_t>(v));
      a = b + 1;
    }
    if (values.size() != 65)
      throw DatasetError(path + ":" + std::to_string(line_no) +
                         ": expected 65 values (64 pixels and "
                         "the label), found " +
                         std::to_string(values.size()));
    for (int i = 0; i < 64; ++i) {
      if (values[i] < 0 || values[i] > 16)
        throw DatasetError(path + ":" + std::to_string(line_no) + ": pixel " + std::to_string(i) +
                           " is " + std::to_string(values[i]) + ", expected 0..16");
      pixels.push_back(static_cast<uint8_t>((values[i] * 255 + 8) / 16));
    }
    if (values[64] < 0 || values[64] > 9)
      throw DatasetError(path + ":" + std::to_string(line_no) + ": label " +
                         std::to_string(values[64]) + " is not a digit");
    labels.push_back(values[64]);
  }
  if (labels.empty()) throw DatasetError(path + ": no digits in the file");
  ImageDataset ds;
  const auto n = static_cast<int64_t>(labels.size());
  ds.images = torch::from_blob(pixels.data(), {n, 1, 8, 8}, torch::kUInt8).clone();
  ds.labels = torch::tensor(labels, torch::kLong);
  for (int d = 0; d < 10; ++d) ds.class_names.push_back(std::to_string(d));
  ds.split = "all";
  ds.source = path;
  return ds;
}

PixelSink into_tensor(torch::Tensor& images) {
  return [&images](const std::vector<int64_t>& shape) {
    images = torch::empty(shape, torch::kUInt8);
    return images.data_ptr<uint8_t>();
  };
}

torch::Tensor to_float(const torch::Tensor& images) {
  return images.to(torch::kFloat32).div_(255.0);
}

}  // namespace ebm::data
