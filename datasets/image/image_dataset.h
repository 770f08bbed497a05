// Image datasets in the formats they were published in, read into one in-memory form:
// uint8 images [N, C, H, W], int64 labels [N], class names. Malformed files raise
// DatasetError naming the file, what was expected and what was found.
#pragma once

#include <torch/types.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace ebm::data {

class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImageDataset {
  torch::Tensor images;  // uint8 [N, C, H, W]
  torch::Tensor labels;  // int64 [N]
  std::vector<std::string> class_names;
  std::string split;     // "train", "test", ...
  std::string source;    // where it was read from

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

// Reads a whole file, transparently gunzipping it when it starts with the gzip magic.
std::string read_maybe_gzipped(const std::string& path);

// IDX (MNIST family): images (magic 0x00000803, uint8 N x H x W) and labels (0x00000801, uint8 N).
ImageDataset load_idx(const std::string& images_path, const std::string& labels_path,
                      std::vector<std::string> class_names = {});
// A folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST / Fashion-MNIST).
// class_set: "fashion_mnist" or "mnist" (names of the 10 classes).
ImageDataset load_mnist_folder(const std::string& dir, const std::string& split,
                               const std::string& class_set);

// CIFAR-10 binary version: data_batch_1..5.bin (train) or test_batch.bin (test), records of
// 1 label byte + 3072 bytes (R, G, B planes of 32x32); class names from batches.meta.txt.
ImageDataset load_cifar10(const std::string& dir, const std::string& split);
// CIFAR-100 binary version: train.bin / test.bin, records of 2 label bytes (coarse, fine) + 3072;
// label_kind "fine" (100 classes) or "coarse" (20).
ImageDataset load_cifar100(const std::string& dir, const std::string& split,
                           const std::string& label_kind = "fine");

// One entry point for configs: format "fashion_mnist" | "mnist" | "idx" (dir as for MNIST) |
// "cifar10" | "cifar100".
ImageDataset load_image_dataset(const std::string& format, const std::string& path,
                                const std::string& split);

// uint8 [N, C, H, W] -> float in [0, 1] (x / 255).
torch::Tensor to_float(const torch::Tensor& images);

}  // namespace ebm::data
