// Folders of PNG/JPEG images (libpng's simplified API, libjpeg), and SVHN's MATLAB files
// (libmatio).
#include <jpeglib.h>
// jerror.h after jpeglib.h: it needs its types.
#include <jerror.h>
#include <matio.h>
#include <png.h>
#include <torch/torch.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "datasets/image/image_dataset.h"
#include "ebm/util/files.h"
#include "ebm/util/sizes.h"

namespace ebm::data {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DatasetError(where + ": " + what);
}

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

bool is_image(const fs::path& p) {
  const std::string e = lower_ext(p);
  return e == ".png" || e == ".jpg" || e == ".jpeg";
}

// Refuses, before anything is allocated for it, an image whose header claims more than a data
// set's image can be: a side over 16384 pixels, or more pixels than 1024 per byte of the file
// (deflate expands at most 1032:1; baseline JPEG needs some bits per 8x8 block) once past 1 Mpx.
void check_claimed_size(const std::string& path, const char* format, uint64_t width,
                        uint64_t height, size_t file_bytes) {
  constexpr uint64_t kMaxSide = 16384;
  const uint64_t pixels = width * height;
  if (width == 0 || height == 0 || width > kMaxSide || height > kMaxSide ||
      pixels > std::max<uint64_t>(uint64_t{1} << 20, uint64_t{1024} * file_bytes)) {
    fail(path, std::string("implausible ") + format + " size " + std::to_string(width) + "x" +
                   std::to_string(height) + " for a file of " + std::to_string(file_bytes) +
                   " bytes");
  }
}

// Decoded image: uint8 [C, H, W] with C = `channels`.
torch::Tensor decode_png(const std::string& path, int channels) {
  const std::string bytes = util::read_file(path);
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size())) {
    fail(path, std::string("not a readable PNG (") + img.message + ")");
  }
  img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  try {
    check_claimed_size(path, "PNG", img.width, img.height, bytes.size());
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  auto hwc = torch::empty({img.height, img.width, channels}, torch::kUInt8);
  if (!png_image_finish_read(&img, nullptr, hwc.data_ptr<uint8_t>(), 0, nullptr)) {
    const std::string msg = img.message;
    png_image_free(&img);
    fail(path, "corrupt PNG (" + msg + ")");
  }
  return hwc.permute({2, 0, 1}).contiguous();
}

struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

torch::Tensor decode_jpeg(const std::string& path, int channels) {
  const std::string bytes = util::read_file(path);
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = [](j_common_ptr c) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    (*c->err->format_message)(c, e->message);
    longjmp(e->jump, 1);
  };
  // Warnings that mean lost or damaged data (a truncated file is padded with grey, a bad Huffman
  // code resynchronised) are errors here; "extraneous bytes before a marker" and trace messages
  // stay quiet, as many cameras write such files.
  err.mgr.emit_message = [](j_common_ptr c, int level) {
    if (level != -1 || c->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    (*c->err->error_exit)(c);
  };
  torch::Tensor hwc;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fail(path, std::string("corrupt JPEG (") + err.message + ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  try {
    check_claimed_size(path, "JPEG", cinfo.image_width, cinfo.image_height, bytes.size());
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int64_t h = cinfo.output_height, w = cinfo.output_width;
  hwc = torch::empty({h, w, channels}, torch::kUInt8);
  auto* p = hwc.data_ptr<uint8_t>();
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = p + static_cast<int64_t>(cinfo.output_scanline) * w * channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return hwc.permute({2, 0, 1}).contiguous();
}

}  // namespace

ImageDataset load_image_folder(const std::string& dir, int channels, int size) {
  if (channels != 1 && channels != 3) fail(dir, "channels must be 1 or 3");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, "not a directory");
  std::vector<std::string> classes;
  std::vector<std::pair<std::string, int64_t>> files;
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory()) subdirs.push_back(e.path());
  }
  std::sort(subdirs.begin(), subdirs.end());
  auto collect = [&](const fs::path& folder, int64_t label) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      if (e.is_regular_file() && is_image(e.path())) found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) files.emplace_back(f, label);
  };
  for (const auto& s : subdirs) {
    const size_t before = files.size();
    collect(s, static_cast<int64_t>(classes.size()));
    if (files.size() > before) classes.push_back(s.filename().string());
  }
  if (files.empty()) {
    collect(dir, 0);
    classes.push_back(fs::path(dir).filename().string());
  }
  if (files.empty()) fail(dir, "no .png, .jpg or .jpeg images here or in its sub-folders");
  std::vector<torch::Tensor> images;
  images.reserve(files.size());
  for (const auto& [f, label] : files) {
    auto img = lower_ext(f) == ".png" ? decode_png(f, channels) : decode_jpeg(f, channels);
    if (size > 0 && (img.size(1) != size || img.size(2) != size)) {
      img = resize(img.unsqueeze(0), size, size).squeeze(0);
    } else if (size <= 0 && !images.empty() && img.sizes() != images.front().sizes()) {
      fail(f, "is " + std::to_string(img.size(2)) + "x" + std::to_string(img.size(1)) +
                  ", the first image " + std::to_string(images.front().size(2)) + "x" +
                  std::to_string(images.front().size(1)) + " (give a size to resize them all)");
    }
    images.push_back(img);
  }
  ImageDataset ds;
  ds.images = torch::stack(images);
  ds.labels = torch::empty({static_cast<int64_t>(files.size())}, torch::kLong);
  for (size_t i = 0; i < files.size(); ++i) ds.labels[static_cast<int64_t>(i)] = files[i].second;
  ds.class_names = classes;
  ds.split = "all";
  ds.source = dir;
  return ds;
}

torch::Tensor load_image_file(const std::string& path, int channels) {
  if (channels != 1 && channels != 3) fail(path, "channels must be 1 or 3");
  if (!is_image(path)) fail(path, "not a .png, .jpg or .jpeg file");
  return lower_ext(path) == ".png" ? decode_png(path, channels) : decode_jpeg(path, channels);
}

ImageDataset random_crops(const std::vector<std::string>& files, int64_t count, int64_t crop,
                          int64_t size, int channels, uint64_t seed) {
  if (files.empty()) throw DatasetError("random_crops: no image files given");
  if (count <= 0 || crop <= 0 || size <= 0)
    throw DatasetError("random_crops: count, crop and size must be > 0");
  std::vector<torch::Tensor> sources;
  for (const auto& f : files) {
    auto img = load_image_file(f, channels);
    if (img.size(1) < crop || img.size(2) < crop)
      fail(f, "is " + std::to_string(img.size(2)) + "x" + std::to_string(img.size(1)) +
                  ", smaller than the crop " + std::to_string(crop));
    sources.push_back(img);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> crops;
  for (int64_t i = 0; i < count; ++i) {
    const auto& src =
        sources[torch::randint(static_cast<int64_t>(sources.size()), {1}, gen).item<int64_t>()];
    const int64_t y = torch::randint(src.size(1) - crop + 1, {1}, gen).item<int64_t>();
    const int64_t x = torch::randint(src.size(2) - crop + 1, {1}, gen).item<int64_t>();
    crops.push_back(src.narrow(1, y, crop).narrow(2, x, crop));
  }
  ImageDataset ds;
  ds.images = torch::stack(crops);
  if (crop != size) ds.images = resize(ds.images, size, size);
  ds.labels = torch::zeros({count}, torch::kLong);
  ds.class_names = {"texture"};
  ds.split = "all";
  ds.source = files.front() +
              (files.size() > 1 ? " and " + std::to_string(files.size() - 1) + " more" : "");
  return ds;
}

namespace {

uint64_t regular_file_size(const std::string& path) {
  try {
    return util::read_file_size(path);
  } catch (const std::runtime_error& e) {
    throw DatasetError(e.what());
  }
}

// X's and y's headers, read without their data: kinds, ranks and sizes that no SVHN file has
// (complex data, dimensions whose data the file cannot hold even compressed) are refused before
// libmatio allocates for them.
void check_svhn_header(mat_t* mat, const std::string& path, uint64_t file_bytes) {
  for (const char* name : {"X", "y"}) {
    matvar_t* info = Mat_VarReadInfo(mat, name);
    if (!info) fail(path, std::string("needs variables X and y (no readable ") + name + ")");
    std::vector<int64_t> dims;
    for (int d = 0; d < info->rank && d < 8; ++d)
      dims.push_back(static_cast<int64_t>(info->dims[d]));
    const bool complex = info->isComplex != 0;
    const bool rank_ok = info->rank >= 1 && info->rank <= 8;
    Mat_VarFree(info);
    if (complex) fail(path, std::string(name) + " holds complex numbers (SVHN stores real ones)");
    const auto elements = util::checked_bytes(dims, 1);
    if (!rank_ok || !elements || *elements > uint64_t{1032} * file_bytes) {
      fail(path, std::string(name) + "'s dimensions claim more elements than a file of " +
                     std::to_string(file_bytes) + " bytes can hold");
    }
  }
}

}  // namespace

ImageDataset load_svhn(const std::string& path_or_dir, const std::string& split) {
  std::string path = path_or_dir;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (split != "train" && split != "test" && split != "extra") {
      fail(path, "split must be train, test or extra, got '" + split + "'");
    }
    path = (fs::path(path) / (split + "_32x32.mat")).string();
  }
  if (!fs::exists(path, ec)) fail(path, "not found");
  const uint64_t file_bytes = regular_file_size(path);
  mat_t* mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  if (!mat) fail(path, "not a MATLAB file libmatio can read (truncated or corrupt?)");
  auto close = [&] { Mat_Close(mat); };
  try {
    check_svhn_header(mat, path, file_bytes);
  } catch (...) {
    close();
    throw;
  }
  matvar_t* x = Mat_VarRead(mat, "X");
  matvar_t* y = Mat_VarRead(mat, "y");
  auto cleanup = [&] {
    if (x) Mat_VarFree(x);
    if (y) Mat_VarFree(y);
    close();
  };
  if (!x || !y) {
    cleanup();
    fail(path, "needs variables X and y");
  }
  if (x->data_type != MAT_T_UINT8 || x->isComplex || x->rank != 4 || x->dims[0] != 32 ||
      x->dims[1] != 32 || x->dims[2] != 3 || !x->data || x->nbytes != 3072 * x->dims[3]) {
    const std::string rank = std::to_string(x->rank);
    cleanup();
    fail(path, "X must be uint8 32x32x3xN (rank " + rank + " found)");
  }
  const int64_t n = static_cast<int64_t>(x->dims[3]);
  if (y->rank != 2 || y->isComplex || static_cast<int64_t>(y->dims[0] * y->dims[1]) != n ||
      !y->data || (y->data_type != MAT_T_DOUBLE && y->data_type != MAT_T_UINT8) ||
      y->nbytes != static_cast<size_t>(n) * (y->data_type == MAT_T_DOUBLE ? 8 : 1)) {
    cleanup();
    fail(path, "y must hold N = " + std::to_string(n) + " labels (double or uint8)");
  }
  ImageDataset ds;
  // MATLAB is column-major: X(h, w, c, n) sits at h + 32 w + 1024 c + 3072 n; we want [n][c][h][w].
  auto cwhn =
      torch::from_blob(x->data, {n, 3, 32, 32}, torch::kUInt8);  // dims reversed: [n][c][w][h]
  ds.images = cwhn.transpose(2, 3).contiguous();
  ds.labels = torch::empty({n}, torch::kLong);
  auto* lp = ds.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const double v = y->data_type == MAT_T_DOUBLE ? static_cast<const double*>(y->data)[i]
                                                  : static_cast<const uint8_t*>(y->data)[i];
    if (v < 1 || v > 10 || v != std::floor(v)) {
      cleanup();
      fail(path,
           "label " + std::to_string(v) + " of item " + std::to_string(i) + " is not in 1..10");
    }
    lp[i] = static_cast<int64_t>(v) % 10;
  }
  cleanup();
  ds.class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  ds.split = split;
  ds.source = path;
  return ds;
}

torch::Tensor to_float_dequantized(const torch::Tensor& images, std::optional<at::Generator> gen) {
  auto x = images.to(torch::kFloat32).mul_(1.0 / 256.0);
  return x.add_(torch::rand(x.sizes(), gen, x.options()).mul_(1.0 / 256.0));
}

torch::Tensor random_crop(const torch::Tensor& x, int64_t size, int64_t padding,
                          std::optional<at::Generator> gen) {
  const int64_t h = x.size(2) + 2 * padding, w = x.size(3) + 2 * padding;
  if (size > h || size > w) throw DatasetError("random_crop: crop larger than the padded image");
  auto padded = torch::constant_pad_nd(x, {padding, padding, padding, padding}, 0);
  auto out = torch::empty({x.size(0), x.size(1), size, size}, x.options());
  auto oy = torch::randint(h - size + 1, {x.size(0)}, gen, torch::kLong);
  auto ox = torch::randint(w - size + 1, {x.size(0)}, gen, torch::kLong);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const int64_t y0 = oy[i].item<int64_t>(), x0 = ox[i].item<int64_t>();
    out[i].copy_(padded[i].slice(1, y0, y0 + size).slice(2, x0, x0 + size));
  }
  return out;
}

torch::Tensor random_flip(const torch::Tensor& x, std::optional<at::Generator> gen) {
  auto flip = torch::rand({x.size(0)}, gen, torch::kFloat32).lt(0.5).view({-1, 1, 1, 1});
  return torch::where(flip.to(x.device()), x.flip({3}), x);
}

torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width) {
  const bool u8 = x.scalar_type() == torch::kUInt8;
  auto f = u8 ? x.to(torch::kFloat32) : x;
  namespace F = torch::nn::functional;
  auto out = F::interpolate(f, F::InterpolateFuncOptions()
                                   .size(std::vector<int64_t>{height, width})
                                   .mode(torch::kBilinear)
                                   .align_corners(false)
                                   .antialias(true));
  return u8 ? out.round_().clamp_(0, 255).to(torch::kUInt8) : out;
}

torch::Tensor to_channels(const torch::Tensor& x, int64_t channels) {
  if (x.size(1) == channels) return x;
  if (x.size(1) == 1 && channels == 3) return x.expand({-1, 3, -1, -1}).contiguous();
  if (x.size(1) == 3 && channels == 1) {
    const bool u8 = x.scalar_type() == torch::kUInt8;
    auto f = x.to(torch::kFloat32);
    auto g =
        (f.select(1, 0) * 0.299 + f.select(1, 1) * 0.587 + f.select(1, 2) * 0.114).unsqueeze(1);
    return u8 ? g.round_().clamp_(0, 255).to(torch::kUInt8) : g;
  }
  throw DatasetError("to_channels: cannot convert " + std::to_string(x.size(1)) + " channels to " +
                     std::to_string(channels));
}

}  // namespace ebm::data
