// The binary data set formats of codecs.h: gzip, IDX, CIFAR records and the dSprites npz.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iomanip>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "datasets/image/codecs.h"
#include "datasets/image/npz_internal.h"
#include "ebm/util/files.h"
#include "ebm/util/sizes.h"

namespace ebm::data {

namespace {

using detail::fail;

uint32_t be32(const std::string& bytes, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string hex(uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << std::setw(8) << std::setfill('0') << v;
  return s.str();
}

// The bytes of one IDX item type code.
uint64_t idx_item_size(unsigned char type, const std::string& path) {
  switch (type) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      fail(path, "IDX type code " + hex(type) + " is unknown");
  }
}

// Inflates the gzip stream `raw` while its size stays within what `announced` reads from its
// head and `max_bytes`.
std::string gunzip(std::string& raw, const std::string& path, const AnnouncedSize& announced,
                   uint64_t max_bytes) {
  detail::Inflater inflater(16 + MAX_WBITS, path);
  z_stream* zs = &inflater.stream;
  zs->next_in = reinterpret_cast<Bytef*>(raw.data());
  zs->avail_in = static_cast<uInt>(raw.size());
  std::string out;
  std::optional<uint64_t> bound;
  std::array<char, 1 << 16> chunk;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs->next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs->avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR)
      fail(path, "truncated gzip stream after " + std::to_string(out.size()) + " bytes");
    if (rc != Z_OK && rc != Z_STREAM_END) {
      fail(path, "corrupt gzip stream (" +
                     (zs->msg ? std::string(zs->msg) : "error " + std::to_string(rc)) + ")");
    }
    out.append(chunk.data(), chunk.size() - zs->avail_out);
    if (!bound && announced) bound = announced(out);
    const uint64_t limit = bound ? std::min(*bound, max_bytes) : max_bytes;
    if (out.size() > limit) {
      fail(path, "gzip stream inflates past " + std::to_string(limit) + " bytes, " +
                     (bound ? "the size its header announces" : "the most this reader accepts"));
    }
    if (rc != Z_STREAM_END && zs->avail_in == 0 && zs->avail_out != 0)
      fail(path, "truncated gzip stream after " + std::to_string(out.size()) + " bytes");
  }
  return out;
}

}  // namespace

std::optional<uint64_t> idx_announced_size(std::string_view head, const std::string& path) {
  if (head.size() < 4) return std::nullopt;
  const auto* u = reinterpret_cast<const unsigned char*>(head.data());
  const size_t dims = u[3];
  const size_t header = 4 + 4 * dims;
  if (head.size() < header) return std::nullopt;
  const uint64_t item = idx_item_size(u[2], path);
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
  std::string raw = detail::read_regular_file(path);
  const bool gzipped = raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
                       static_cast<unsigned char>(raw[1]) == 0x8b;
  return gzipped ? gunzip(raw, path, announced, max_bytes) : raw;
}

std::string read_idx_file(const std::string& path) {
  return read_maybe_gzipped(
      path, [&path](std::string_view head) { return idx_announced_size(head, path); });
}

void decode_idx_images(const std::string& bytes, const std::string& path, const PixelSink& sink) {
  if (bytes.size() < 16)
    fail(path, "IDX header needs 16 bytes, file has " + std::to_string(bytes.size()));
  if (be32(bytes, 0) != 0x00000803)
    fail(path, "IDX images need magic 0x00000803 (uint8, 3 dims), found " + hex(be32(bytes, 0)));
  const uint64_t n = be32(bytes, 4), h = be32(bytes, 8), w = be32(bytes, 12);
  if (h == 0 || w == 0 || h > 4096 || w > 4096)
    fail(path, "implausible image size " + std::to_string(h) + "x" + std::to_string(w));
  if (bytes.size() - 16 != n * h * w)
    fail(path, "header says " + std::to_string(n) + " images of " + std::to_string(h) + "x" +
                   std::to_string(w) + " = " + std::to_string(n * h * w) + " bytes, file holds " +
                   std::to_string(bytes.size() - 16));
  uint8_t* out =
      sink({static_cast<int64_t>(n), 1, static_cast<int64_t>(h), static_cast<int64_t>(w)});
  if (n) std::memcpy(out, bytes.data() + 16, n * h * w);
}

std::vector<int64_t> decode_idx_labels(const std::string& bytes, const std::string& path,
                                       int64_t num_classes) {
  if (bytes.size() < 8)
    fail(path, "IDX header needs 8 bytes, file has " + std::to_string(bytes.size()));
  if (be32(bytes, 0) != 0x00000801)
    fail(path, "IDX labels need magic 0x00000801 (uint8, 1 dim), found " + hex(be32(bytes, 0)));
  const uint64_t n = be32(bytes, 4);
  if (bytes.size() - 8 != n)
    fail(path, "header says " + std::to_string(n) + " labels, file holds " +
                   std::to_string(bytes.size() - 8));
  std::vector<int64_t> labels(n);
  for (uint64_t i = 0; i < n; ++i) {
    labels[i] = static_cast<unsigned char>(bytes[8 + i]);
    if (labels[i] >= num_classes)
      fail(path, "label " + std::to_string(labels[i]) + " of item " + std::to_string(i) +
                     " is out of range [0, " + std::to_string(num_classes) + ")");
  }
  return labels;
}

int64_t cifar_record_count(const std::string& bytes, const std::string& path,
                           const CifarLayout& layout) {
  const auto record = static_cast<size_t>(layout.record_bytes());
  if (bytes.empty() || bytes.size() % record != 0)
    fail(path, "CIFAR records are " + std::to_string(record) + " bytes; file size " +
                   std::to_string(bytes.size()) + " is not a positive multiple (truncated?)");
  return static_cast<int64_t>(bytes.size() / record);
}

void decode_cifar_records(const std::string& bytes, const std::string& path,
                          const CifarLayout& layout, uint8_t* pixels, int64_t* labels) {
  constexpr int64_t kPixels = 3 * 32 * 32;
  const int64_t record = layout.record_bytes();
  const int64_t count = cifar_record_count(bytes, path, layout);
  for (int64_t r = 0; r < count; ++r) {
    const char* rec = bytes.data() + r * record;
    const int64_t label = static_cast<unsigned char>(rec[layout.label_index]);
    if (label >= layout.num_classes)
      fail(path, "record " + std::to_string(r) + " (offset " + std::to_string(r * record) +
                     ") has label " + std::to_string(label) + ", expected < " +
                     std::to_string(layout.num_classes));
    labels[r] = label;
    std::memcpy(pixels + r * kPixels, rec + layout.label_bytes, kPixels);  // R, G, B = CHW
  }
}

DSpritesLatents read_dsprites_npz(const std::string& path, const PixelSink& sink) {
  const ZipArchive zip(path);
  const NpyHeader h = npz_array_header(zip, "imgs");
  if (h.descr != "|u1" || h.shape.size() != 3 || h.shape[1] != 64 || h.shape[2] != 64) {
    fail(path, "'imgs' must be uint8 N x 64 x 64, found " + h.descr + " " + h.shape_text());
  }
  const int64_t n = h.shape[0];
  const std::vector<int64_t> latents_shape = {n, 6};
  const NpyHeader vh = npz_array_header(zip, "latents_values");
  if (vh.descr != "<f8" || vh.shape != latents_shape) {
    fail(path, "'latents_values' must be float64 " + std::to_string(n) + " x 6, found " + vh.descr +
                   " " + vh.shape_text());
  }
  const NpyHeader ch = npz_array_header(zip, "latents_classes");
  if (ch.descr != "<i8" || ch.shape != latents_shape) {
    fail(path, "'latents_classes' must be int64 " + std::to_string(n) + " x 6, found " + ch.descr +
                   " " + ch.shape_text());
  }
  uint8_t* images = nullptr;
  read_npz_array(zip, "imgs", [&](const NpyHeader&) { return images = sink({n, 1, 64, 64}); });
  for (int64_t i = 0; i < n * 4096; ++i) {
    if (images[i] > 1)
      fail(path, "'imgs' value " + std::to_string(images[i]) + " at element " + std::to_string(i) +
                     " (expected 0 or 1)");
    images[i] = static_cast<uint8_t>(images[i] * 255);
  }
  // Allocated by the callbacks, once the reader has checked the shapes against the members.
  DSpritesLatents latents;
  read_npz_array(zip, "latents_values", [&](const NpyHeader&) {
    latents.values.resize(static_cast<size_t>(n) * 6);
    return latents.values.data();
  });
  std::vector<int64_t> classes;
  read_npz_array(zip, "latents_classes", [&](const NpyHeader&) {
    classes.resize(static_cast<size_t>(n) * 6);
    return classes.data();
  });
  for (int64_t i = 0; i < n; ++i) {
    const int64_t shape = classes[i * 6 + 1];
    if (shape < 0 || shape > 2)
      fail(path, "'latents_classes' gives image " + std::to_string(i) + " the shape " +
                     std::to_string(shape) + " (expected 0..2)");
    latents.shapes.push_back(shape);
  }
  return latents;
}

}  // namespace ebm::data
