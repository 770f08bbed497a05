// Folders of PNG/JPEG images, SVHN's MATLAB files (both decoded by codecs.h), and the batch
// transforms.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "datasets/image/npz_internal.h"

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

// One PNG or JPEG file as uint8 [C, H, W].
torch::Tensor decode_image_file(const std::string& path, int channels) {
  const std::string bytes = detail::read_regular_file(path);
  torch::Tensor hwc;
  if (lower_ext(path) == ".png")
    decode_png(bytes, path, channels, into_tensor(hwc));
  else
    decode_jpeg(bytes, path, channels, into_tensor(hwc));
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
    auto img = decode_image_file(f, channels);
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
  return decode_image_file(path, channels);
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
  ImageDataset ds;
  ds.labels = torch::tensor(read_svhn_mat(path, into_tensor(ds.images)), torch::kLong);
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
