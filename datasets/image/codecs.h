// The image file formats decoded without LibTorch: gzip, IDX, CIFAR records, PNG, JPEG, SVHN's
// MATLAB files and the dSprites npz. The readers of image_dataset.h wrap them into tensors, and
// the fuzz targets (fuzz/) run them alone. Every decoder checks what a header claims against the
// bytes at hand before it allocates anything, and throws DatasetError naming the file. Decoded
// pixels go where the caller's PixelSink points, so a reader fills its tensor without a copy.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/image/npz.h"  // DatasetError

namespace ebm::data {

// Where decoded pixels go: called once, with the shape the header announces after that shape was
// checked against the file; returns room for as many bytes as the shape has elements.
using PixelSink = std::function<uint8_t*(const std::vector<int64_t>& shape)>;

// The total size of a file as its first bytes announce it, or nothing while `head` is too short
// to tell. Bounds what a gzip stream may inflate to (read_maybe_gzipped).
using AnnouncedSize = std::function<std::optional<uint64_t>(std::string_view head)>;

// Reads a whole file, transparently gunzipping it when it starts with the gzip magic. The
// inflated bytes may not exceed what `announced` (when given) reads from their head, nor
// `max_bytes`: a gzip bomb stops there with an error naming the file.
std::string read_maybe_gzipped(const std::string& path, const AnnouncedSize& announced = {},
                               uint64_t max_bytes = uint64_t{1} << 36);

// The size an IDX file's header announces (magic, type, dimensions, then the data), checked for
// overflow; nothing until the header is complete. Throws DatasetError naming `path` for an
// unknown type code or a size that does not fit in 62 bits.
std::optional<uint64_t> idx_announced_size(std::string_view head, const std::string& path);

// An IDX file read whole (gunzipped when compressed), inflating no further than its header says.
std::string read_idx_file(const std::string& path);

// IDX images (magic 0x00000803, uint8 N x H x W, sides 1..4096): the pixels go to
// sink({N, 1, H, W}).
void decode_idx_images(const std::string& bytes, const std::string& path, const PixelSink& sink);

// IDX labels (magic 0x00000801, uint8 N), each below `num_classes`.
std::vector<int64_t> decode_idx_labels(const std::string& bytes, const std::string& path,
                                       int64_t num_classes = 256);

// The CIFAR binary versions: records of `label_bytes` label bytes, the label at `label_index`,
// then 3072 pixel bytes (R, G, B planes of 32x32).
struct CifarLayout {
  int label_bytes = 1;
  int label_index = 0;
  int64_t num_classes = 10;

  static CifarLayout cifar10() { return {1, 0, 10}; }
  static CifarLayout cifar100(bool fine) { return {2, fine ? 1 : 0, fine ? 100 : 20}; }
  int64_t record_bytes() const { return label_bytes + 3072; }
};

// The number of records in a CIFAR file's bytes; an empty file or a size that is no multiple of
// the record is an error naming `path`.
int64_t cifar_record_count(const std::string& bytes, const std::string& path,
                           const CifarLayout& layout);

// Copies the records' pixels to `pixels` (count x 3 x 32 x 32) and their labels to `labels`
// (count); a label of num_classes or more is an error naming the record and its offset.
void decode_cifar_records(const std::string& bytes, const std::string& path,
                          const CifarLayout& layout, uint8_t* pixels, int64_t* labels);

// A PNG or JPEG file's bytes decoded to `channels` (1 grey, 3 RGB) into sink({H, W, channels}).
// Sides over 16384, or over 1 Mpx with more pixels than 1024 per file byte, are refused before
// anything is allocated; so are damaged data (a truncated JPEG, a corrupt PNG chunk).
void decode_png(const std::string& bytes, const std::string& path, int channels,
                const PixelSink& sink);
void decode_jpeg(const std::string& bytes, const std::string& path, int channels,
                 const PixelSink& sink);

// SVHN cropped digits (MATLAB v5 via libmatio): X (uint8 32x32x3xN, column-major) goes to
// sink({N, 3, 32, 32}) as rows of pixels; returns y with 10 (the digit 0) mapped to 0.
std::vector<int64_t> read_svhn_mat(const std::string& path, const PixelSink& sink);

// The official dSprites npz: imgs (N x 64 x 64 of 0/1) go to sink({N, 1, 64, 64}) as 0/255;
// latents_values (float64 N x 6) and the shape column of latents_classes (int64 N x 6, 0..2).
struct DSpritesLatents {
  std::vector<double> values;  // N x 6, row-major
  std::vector<int64_t> shapes;
};
DSpritesLatents read_dsprites_npz(const std::string& path, const PixelSink& sink);

}  // namespace ebm::data
