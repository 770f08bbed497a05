// PNG encoding (libpng) and image grids.
#pragma once

#include <torch/types.h>

#include <string>

namespace ebm::report {

// Encodes uint8 pixels [H, W, C] (C = 1, 3 or 4, contiguous) as PNG bytes.
std::string encode_png(const torch::Tensor& hwc_uint8);
// Decodes PNG bytes to uint8 [H, W, C] (for tests and image folders). Throws on corrupt data.
torch::Tensor decode_png(const std::string& bytes);

// Tiles images [N, C, H, W] (float in [0, 1], or uint8) into one uint8 [H', W', C] grid with
// `nrow` images per row (0: about square) and `padding` pixels of `pad_value` between them.
torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow = 0, int64_t padding = 2,
                        uint8_t pad_value = 255);

// make_grid + encode_png + atomic write to `path`.
void write_png_grid(const std::string& path, const torch::Tensor& images, int64_t nrow = 0);

}  // namespace ebm::report
