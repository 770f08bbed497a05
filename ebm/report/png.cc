#include "ebm/report/png.h"

#include <png.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "ebm/util/files.h"

namespace ebm::report {

namespace {

void write_to_string(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}
void no_flush(png_structp) {}

struct ReadCursor {
  const std::string* bytes;
  size_t at;
};
void read_from_string(png_structp png, png_bytep data, png_size_t length) {
  auto* cur = static_cast<ReadCursor*>(png_get_io_ptr(png));
  if (cur->at + length > cur->bytes->size()) png_error(png, "truncated PNG data");
  std::memcpy(data, cur->bytes->data() + cur->at, length);
  cur->at += length;
}
[[noreturn]] void on_png_error(png_structp png, png_const_charp msg) {
  *static_cast<std::string*>(png_get_error_ptr(png)) = msg;
  png_longjmp(png, 1);
}
void on_png_warning(png_structp, png_const_charp) {}

// The libpng calls live in these two functions, which hold no C++ objects across setjmp: a
// libpng error longjmps back here and we return false with the message in *error.
bool png_write_rows(png_structp png, png_infop info, std::string* out, const uint8_t* base,
                    png_uint_32 h, png_uint_32 w, int c) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, write_to_string, no_flush);
  png_set_IHDR(png, info, w, h, 8,
               c == 1   ? PNG_COLOR_TYPE_GRAY
               : c == 3 ? PNG_COLOR_TYPE_RGB
                        : PNG_COLOR_TYPE_RGBA,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (png_uint_32 y = 0; y < h; ++y) {
    png_write_row(png, const_cast<png_bytep>(base + static_cast<size_t>(y) * w * c));
  }
  png_write_end(png, nullptr);
  return true;
}

bool png_read_header(png_structp png, png_infop info, ReadCursor* cur, png_uint_32* h,
                     png_uint_32* w, int* c) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, cur, read_from_string);
  png_read_info(png, info);
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_packing(png);
  png_read_update_info(png, info);
  *h = png_get_image_height(png, info);
  *w = png_get_image_width(png, info);
  *c = png_get_channels(png, info);
  return true;
}

bool png_read_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

std::string encode_png(const torch::Tensor& hwc_in) {
  if (hwc_in.dim() != 3 || hwc_in.scalar_type() != torch::kUInt8)
    throw std::invalid_argument("encode_png: need uint8 [H, W, C], got " +
                                c10::str(hwc_in.sizes()));
  auto hwc = hwc_in.contiguous().to(torch::kCPU);
  const int c = static_cast<int>(hwc.size(2));
  if (c != 1 && c != 3 && c != 4)
    throw std::invalid_argument("encode_png: 1, 3 or 4 channels, got " + std::to_string(c));
  std::string error, out;
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) throw std::runtime_error("encode_png: libpng init failed");
  const bool ok = png_write_rows(png, info, &out, hwc.data_ptr<uint8_t>(),
                                 static_cast<png_uint_32>(hwc.size(0)),
                                 static_cast<png_uint_32>(hwc.size(1)), c);
  png_destroy_write_struct(&png, &info);
  if (!ok) throw std::runtime_error("encode_png: " + error);
  return out;
}

torch::Tensor decode_png(const std::string& bytes) {
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8))
    throw std::runtime_error("decode_png: not a PNG (bad signature)");
  std::string error;
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) throw std::runtime_error("decode_png: libpng init failed");
  ReadCursor cur{&bytes, 0};
  png_uint_32 h = 0, w = 0;
  int c = 0;
  if (!png_read_header(png, info, &cur, &h, &w, &c)) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw std::runtime_error("decode_png: " + error);
  }
  auto out = torch::empty(
      {static_cast<int64_t>(h), static_cast<int64_t>(w), static_cast<int64_t>(c)}, torch::kUInt8);
  std::vector<png_bytep> rows(h);
  for (png_uint_32 y = 0; y < h; ++y)
    rows[y] = out.data_ptr<uint8_t>() + static_cast<size_t>(y) * w * c;
  const bool ok = png_read_rows(png, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);
  if (!ok) throw std::runtime_error("decode_png: " + error);
  return out;
}

torch::Tensor make_grid(const torch::Tensor& images_in, int64_t nrow, int64_t padding,
                        uint8_t pad_value) {
  if (images_in.dim() != 4)
    throw std::invalid_argument("make_grid: need [N, C, H, W], got " + c10::str(images_in.sizes()));
  auto images = images_in.detach().to(torch::kCPU);
  if (images.scalar_type() != torch::kUInt8) {
    images = (images.to(torch::kFloat32).clamp(0, 1) * 255.0).round().to(torch::kUInt8);
  }
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (nrow <= 0)
    nrow = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n)))));
  const int64_t ncol_rows = (n + nrow - 1) / nrow;
  auto grid = torch::full({padding + ncol_rows * (h + padding), padding + nrow * (w + padding), c},
                          pad_value, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / nrow, col = i % nrow;
    grid.narrow(0, padding + r * (h + padding), h)
        .narrow(1, padding + col * (w + padding), w)
        .copy_(images[i].permute({1, 2, 0}));
  }
  return grid;
}

void write_png_grid(const std::string& path, const torch::Tensor& images, int64_t nrow) {
  util::write_file_atomic(path, encode_png(make_grid(images, nrow)));
}

}  // namespace ebm::report
