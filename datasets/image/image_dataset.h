// Image datasets in the formats they were published in, read into one in-memory form:
// uint8 images [N, C, H, W], int64 labels [N], class names. The formats are decoded by
// codecs.h (no LibTorch); malformed files raise DatasetError naming the file, what was expected
// and what was found.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>
#include <vector>

#include "datasets/image/codecs.h"  // DatasetError, the decoders

namespace ebm::data {

struct ImageDataset {
  torch::Tensor images;  // uint8 [N, C, H, W]
  torch::Tensor labels;  // int64 [N]
  std::vector<std::string> class_names;
  std::string split;   // "train", "test", ...
  std::string source;  // where it was read from
  // Optional ground-truth factors per image (float64 [N, K], e.g. dSprites latents) and names.
  torch::Tensor factors;
  std::vector<std::string> factor_names;

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

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

// Downsampled ImageNet (Chrabaszcz et al. 2017), 32x32 or 64x64, in either official form: npz
// batches ('data' N x 3R^2 uint8 with R, G, B planes; 'labels' 1..1000) or pickled batches
// (read by RestrictedPickle). `path`: a directory holding train_data_batch_<k>[.npz] (train) or
// val_data[.npz] (val/test), or one batch file. Labels are shifted to 0..999. The npz data stream
// straight into the result (no second copy); `resolution` 0 infers R from the data.
ImageDataset load_imagenet_downsampled(const std::string& path, const std::string& split,
                                       int resolution = 0);
// dSprites, official npz (imgs N x 64 x 64 of 0/1, latents_values and latents_classes N x 6):
// images scaled to 0/255, label = shape (0 square, 1 ellipse, 2 heart), factors = latents_values
// (color, shape, scale, orientation, pos_x, pos_y).
ImageDataset load_dsprites(const std::string& npz_path);
// Procedural dSprites: the same factors and 64x64 rendering rules, sampled uniformly from the
// official grid (3 shapes, 6 scales 0.5..1, 40 orientations 0..2pi, 32 x 32 positions 0..1).
struct DSpritesSpec {
  int64_t count = 1000;
  uint64_t seed = 0;
  std::vector<int> shapes = {0, 1, 2};
  double scale_min = 0.5, scale_max = 1.0;
  double pos_min = 0.0, pos_max = 1.0;  // for both x and y
  bool rotate = true;
};
ImageDataset generate_dsprites(const DSpritesSpec& spec);
// Renders one sprite (shape 0 square, 1 ellipse, 2 heart) into a 64x64 uint8 image of 0/255.
void render_sprite(int shape, double scale, double orientation, double pos_x, double pos_y,
                   uint8_t* out64x64);
// A folder of PNG/JPEG images: one sub-folder per class (sorted names are the classes) or flat
// (one class named after the folder). Every image is converted to `channels` (1 or 3) and resized
// (bilinear) to size x size when `size` > 0, else all must share the first image's size.
ImageDataset load_image_folder(const std::string& dir, int channels = 3, int size = 0);
// SVHN cropped digits (train_32x32.mat, test_32x32.mat; MATLAB v5 via libmatio): X is
// 32x32x3xN column-major, y holds 1..10 with 10 for the digit 0 (mapped to 0).
ImageDataset load_svhn(const std::string& path_or_dir, const std::string& split);

// scikit-learn's 8x8 handwritten digits (sklearn/datasets/data/digits.csv[.gz]: 1797 rows of 64
// pixel values 0..16 and the label), scaled to 0..255 as uint8 [N, 1, 8, 8].
ImageDataset load_sklearn_digits(const std::string& path);
// One image file (PNG or JPEG) as uint8 [channels, H, W] (channels 1 or 3).
torch::Tensor load_image_file(const std::string& path, int channels);
// `count` random square crops of side `crop` (uniform positions over all `files`, chosen
// uniformly) resized to size x size: texture patches, uint8 [count, channels, size, size].
ImageDataset random_crops(const std::vector<std::string>& files, int64_t count, int64_t crop,
                          int64_t size, int channels, uint64_t seed);

// One entry point for configs: format "fashion_mnist" | "mnist" | "idx" (dir as for MNIST) |
// "cifar10" | "cifar100" | "imagenet32" | "imagenet64" | "dsprites" (npz path, or "procedural")
// | "folder" | "svhn" | "sklearn_digits" (csv path).
ImageDataset load_image_dataset(const std::string& format, const std::string& path,
                                const std::string& split);

// A decoder's PixelSink that allocates `images` (uint8) in the shape the decoder announces: how
// the readers fill their tensors without a second copy. `images` must outlive the decoding.
PixelSink into_tensor(torch::Tensor& images);

// uint8 [N, C, H, W] -> float in [0, 1] (x / 255).
torch::Tensor to_float(const torch::Tensor& images);

// Transforms on batches.
// uint8 -> float with the original's dequantisation: x * 255/256 / 255 + U(0, 1/256).
torch::Tensor to_float_dequantized(const torch::Tensor& images,
                                   std::optional<at::Generator> gen = std::nullopt);
// Random crop of size x size after zero padding by `padding` on every side, per image.
torch::Tensor random_crop(const torch::Tensor& x, int64_t size, int64_t padding,
                          std::optional<at::Generator> gen = std::nullopt);
// Horizontal flip of each image with probability 1/2.
torch::Tensor random_flip(const torch::Tensor& x, std::optional<at::Generator> gen = std::nullopt);
// Bilinear resize of float [N, C, H, W] (uint8 is converted and rounded back).
torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width);
// Channel conversion: 1 -> 3 repeats, 3 -> 1 uses ITU-R 601 luma weights.
torch::Tensor to_channels(const torch::Tensor& x, int64_t channels);

}  // namespace ebm::data
