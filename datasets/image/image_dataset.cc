#include "datasets/image/image_dataset.h"

#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "ebm/util/files.h"
#include "ebm/util/sizes.h"

namespace ebm::data {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DatasetError(path + ": " + what);
}

uint32_t be32(const std::string& bytes, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string hex(uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << std::setw(8) << std::setfill('0') << v;
  return s.str();
}

std::string read_file(const std::string& path) {
  try {
    return util::read_file(path);
  } catch (const std::runtime_error& e) {
    throw DatasetError(e.what());
  }
}

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

std::optional<uint64_t> idx_announced_size(std::string_view head, const std::string& path) {
  if (head.size() < 4) return std::nullopt;
  const auto* u = reinterpret_cast<const unsigned char*>(head.data());
  const size_t dims = u[3];
  const size_t header = 4 + 4 * dims;
  if (head.size() < header) return std::nullopt;
  uint64_t item = 0;
  switch (u[2]) {
    case 0x08:
    case 0x09:
      item = 1;
      break;
    case 0x0B:
      item = 2;
      break;
    case 0x0C:
    case 0x0D:
      item = 4;
      break;
    case 0x0E:
      item = 8;
      break;
    default:
      fail(path, "IDX type code " + hex(u[2]) + " is unknown");
  }
  std::vector<int64_t> shape;
  for (size_t d = 0; d < dims; ++d) {
    const unsigned char* p = u + 4 + 4 * d;
    shape.push_back((int64_t{p[0]} << 24) | (int64_t{p[1]} << 16) | (int64_t{p[2]} << 8) | p[3]);
  }
  const auto bytes = util::checked_bytes(shape, item);
  if (!bytes || *bytes > (uint64_t{1} << 62))
    fail(path, "IDX header announces more than 2^62 bytes of data");
  return header + *bytes;
}

std::string read_maybe_gzipped(const std::string& path, const AnnouncedSize& announced,
                               uint64_t max_bytes) {
  std::string raw = read_file(path);
  if (raw.size() < 2 || static_cast<unsigned char>(raw[0]) != 0x1f ||
      static_cast<unsigned char>(raw[1]) != 0x8b) {
    return raw;
  }
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, "zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  std::optional<uint64_t> bound;
  std::array<char, 1 << 16> chunk;
  int rc = Z_OK;
  auto stop = [&](const std::string& what) {
    inflateEnd(&zs);
    fail(path, what);
  };
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      if (rc == Z_BUF_ERROR)
        stop("truncated gzip stream after " + std::to_string(out.size()) + " bytes");
      stop("corrupt gzip stream (" + msg + ")");
    }
    out.append(chunk.data(), chunk.size() - zs.avail_out);
    if (!bound && announced) bound = announced(out);
    const uint64_t limit = bound ? std::min(*bound, max_bytes) : max_bytes;
    if (out.size() > limit) {
      stop("gzip stream inflates past " + std::to_string(limit) + " bytes, " +
           (bound ? "the size its header announces" : "the most this reader accepts"));
    }
    if (rc != Z_STREAM_END && zs.avail_in == 0 && zs.avail_out != 0)
      stop("truncated gzip stream after " + std::to_string(out.size()) + " bytes");
  }
  inflateEnd(&zs);
  return out;
}

ImageDataset load_idx(const std::string& images_path, const std::string& labels_path,
                      std::vector<std::string> class_names) {
  const auto idx_size = [](const std::string& path) -> AnnouncedSize {
    return [path](std::string_view head) { return idx_announced_size(head, path); };
  };
  const std::string img = read_maybe_gzipped(images_path, idx_size(images_path));
  const std::string lab = read_maybe_gzipped(labels_path, idx_size(labels_path));
  if (img.size() < 16)
    fail(images_path, "IDX header needs 16 bytes, file has " + std::to_string(img.size()));
  if (be32(img, 0) != 0x00000803)
    fail(images_path,
         "IDX images need magic 0x00000803 (uint8, 3 dims), found " + hex(be32(img, 0)));
  const uint64_t n = be32(img, 4), h = be32(img, 8), w = be32(img, 12);
  if (h == 0 || w == 0 || h > 4096 || w > 4096)
    fail(images_path, "implausible image size " + std::to_string(h) + "x" + std::to_string(w));
  if (img.size() - 16 != n * h * w)
    fail(images_path, "header says " + std::to_string(n) + " images of " + std::to_string(h) + "x" +
                          std::to_string(w) + " = " + std::to_string(n * h * w) +
                          " bytes, file holds " + std::to_string(img.size() - 16));
  if (lab.size() < 8)
    fail(labels_path, "IDX header needs 8 bytes, file has " + std::to_string(lab.size()));
  if (be32(lab, 0) != 0x00000801)
    fail(labels_path,
         "IDX labels need magic 0x00000801 (uint8, 1 dim), found " + hex(be32(lab, 0)));
  const uint64_t nl = be32(lab, 4);
  if (nl != n)
    fail(labels_path, std::to_string(nl) + " labels for " + std::to_string(n) + " images");
  if (lab.size() - 8 != nl)
    fail(labels_path, "header says " + std::to_string(nl) + " labels, file holds " +
                          std::to_string(lab.size() - 8));
  ImageDataset ds;
  ds.images =
      torch::empty({static_cast<int64_t>(n), 1, static_cast<int64_t>(h), static_cast<int64_t>(w)},
                   torch::kUInt8);
  std::memcpy(ds.images.data_ptr<uint8_t>(), img.data() + 16, n * h * w);
  ds.labels = torch::empty({static_cast<int64_t>(n)}, torch::kLong);
  auto* lp = ds.labels.data_ptr<int64_t>();
  const int64_t k = class_names.empty() ? 256 : static_cast<int64_t>(class_names.size());
  for (uint64_t i = 0; i < n; ++i) {
    lp[i] = static_cast<unsigned char>(lab[8 + i]);
    if (lp[i] >= k)
      fail(labels_path, "label " + std::to_string(lp[i]) + " of item " + std::to_string(i) +
                            " is out of range [0, " + std::to_string(k) + ")");
  }
  if (class_names.empty()) {
    const int64_t max_label = n ? ds.labels.max().item<int64_t>() : -1;
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

ImageDataset load_cifar_records(const std::vector<std::string>& files, int label_bytes,
                                int label_index, int64_t num_classes) {
  constexpr int64_t kPixels = 3 * 32 * 32;
  const int64_t record = label_bytes + kPixels;
  std::vector<std::string> contents;
  int64_t total = 0;
  for (const auto& f : files) {
    contents.push_back(read_file(f));
    const auto& c = contents.back();
    if (c.empty() || c.size() % record != 0)
      fail(f, "CIFAR records are " + std::to_string(record) + " bytes; file size " +
                  std::to_string(c.size()) + " is not a positive multiple (truncated?)");
    total += static_cast<int64_t>(c.size()) / record;
  }
  ImageDataset ds;
  ds.images = torch::empty({total, 3, 32, 32}, torch::kUInt8);
  ds.labels = torch::empty({total}, torch::kLong);
  auto* ip = ds.images.data_ptr<uint8_t>();
  auto* lp = ds.labels.data_ptr<int64_t>();
  int64_t i = 0;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    const auto& c = contents[fi];
    const int64_t count = static_cast<int64_t>(c.size()) / record;
    for (int64_t r = 0; r < count; ++r, ++i) {
      const char* rec = c.data() + r * record;
      const int64_t label = static_cast<unsigned char>(rec[label_index]);
      if (label >= num_classes)
        fail(files[fi], "record " + std::to_string(r) + " (offset " + std::to_string(r * record) +
                            ") has label " + std::to_string(label) + ", expected < " +
                            std::to_string(num_classes));
      lp[i] = label;
      std::memcpy(ip + i * kPixels, rec + label_bytes, kPixels);  // R, G, B planes = CHW
    }
  }
  ds.source = files.front();
  return ds;
}

std::vector<std::string> read_names(const std::string& path, size_t expected) {
  std::vector<std::string> names;
  std::istringstream in(fs::exists(path) ? read_file(path) : std::string());
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
  auto ds = load_cifar_records(files, 1, 0, 10);
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
  auto ds = load_cifar_records({dir + "/" + split + ".bin"}, 2, fine ? 1 : 0, fine ? 100 : 20);
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

torch::Tensor to_float(const torch::Tensor& images) {
  return images.to(torch::kFloat32).div_(255.0);
}

}  // namespace ebm::data
