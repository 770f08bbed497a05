// SVHN's MATLAB v5 files (libmatio) for codecs.h.
#include <matio.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "datasets/image/codecs.h"
#include "datasets/image/npz_internal.h"
#include "ebm/util/files.h"
#include "ebm/util/sizes.h"

namespace ebm::data {

namespace {

using detail::fail;

// MAT v5 data types and array classes this reader meets (MATLAB's "MAT-File Format", v5).
enum MatType : uint32_t {
  kMiInt8 = 1,
  kMiInt32 = 5,
  kMiUint32 = 6,
  kMiMatrix = 14,
  kMiCompressed = 15
};
constexpr uint32_t kAnyType = 0, kMxDouble = 6, kMxUint64 = 15;
constexpr uint64_t kMaxRank = 32, kMaxName = 256;

// A file descriptor closed on every way out.
struct Descriptor {
  explicit Descriptor(int d) : fd(d) {}
  ~Descriptor() { ::close(fd); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int fd;
};

// Reads MAT v5 tags in the byte order the file's header names.
class MatBytes {
 public:
  explicit MatBytes(bool big_endian) : big_endian_(big_endian) {}
  uint32_t u32(const unsigned char* p) const {
    return big_endian_
               ? (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]
               : (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
  }

 private:
  bool big_endian_;
};

// The start of one variable (a miMATRIX element's body: array flags, dimensions, name, the data's
// tag) checked against what libmatio would allocate from it: libmatio trusts these sizes, so a
// dimensions or data element claiming gigabytes would be allocated before any of our checks ran.
// Only numeric arrays are accepted (SVHN holds nothing else; cells and structs would make libmatio
// read nested headers, char arrays are allocated by their data tag). `head` holds the first bytes
// of the body, `body_size` its size.
void check_variable_head(const std::string& path, const MatBytes& mat, const std::string& head,
                         uint64_t body_size, uint64_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  const std::string where = "the variable at offset " + std::to_string(at);
  size_t pos = 0;
  // One sub-element: its type and data size, in the normal or the small (4-byte) format.
  auto element = [&](uint32_t want, uint64_t min, uint64_t max, const char* what) {
    if (pos + 8 > head.size()) fail(path, where + " is truncated before its " + what);
    uint32_t type = mat.u32(p + pos);
    uint64_t size = mat.u32(p + pos + 4);
    uint64_t padded = 8 + ((size + 7) / 8) * 8;
    if (type >> 16) {  // small data element: size in the upper half, data in the next 4 bytes
      size = type >> 16;
      type &= 0xffff;
      padded = 8;
    }
    if ((want != kAnyType && type != want) || size < min || size > max || pos + padded > body_size)
      fail(path, where + " has a malformed " + what + " element (type " + std::to_string(type) +
                     ", " + std::to_string(size) + " bytes)");
    const size_t data = pos + (padded == 8 ? 4 : 8);
    pos += static_cast<size_t>(padded);
    return data;
  };
  const size_t flags = element(kMiUint32, 8, 8, "array flags");
  const uint32_t array_class = mat.u32(p + flags) & 0xff;
  if (array_class < kMxDouble || array_class > kMxUint64)
    fail(path, where + " is of MATLAB class " + std::to_string(array_class) +
                   " (SVHN files hold numeric arrays only)");
  element(kMiInt32, 8, 4 * kMaxRank, "dimensions");
  element(kMiInt8, 0, kMaxName, "array name");
  // The data's size comes from its own tag (libmatio allocates it for some classes before it
  // compares it with the dimensions): it must lie within the variable.
  element(kAnyType, 0, body_size, "data");
}

// A compressed variable inflated whole, its output dropped but for the first `keep` bytes.
// libmatio checks neither zlib's Adler-32 nor the inflated length, so a flipped byte would pass
// as other pixels: a stream that is corrupt, fails its checksum, ends early or inflates past the
// size its own tag gives is an error here.
std::string inflate_variable(int fd, uint64_t offset, uint64_t size, size_t keep,
                             const MatBytes& mat, const std::string& path) {
  const std::string where = "the compressed variable at offset " + std::to_string(offset - 8);
  detail::Inflater inflater(MAX_WBITS, path);
  z_stream& zs = inflater.stream;
  std::vector<char> in(static_cast<size_t>(std::min<uint64_t>(size, 1 << 20)));
  std::vector<char> out(1 << 16);
  std::string head;
  uint64_t read = 0, total = 0, expected = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0) {
      if (read == size) fail(path, where + " ends before its zlib stream does");
      const auto n = static_cast<size_t>(std::min<uint64_t>(in.size(), size - read));
      detail::pread_all(fd, in.data(), n, offset + read, path);
      read += n;
      zs.next_in = reinterpret_cast<Bytef*>(in.data());
      zs.avail_in = static_cast<uInt>(n);
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) continue;
    if (rc != Z_OK && rc != Z_STREAM_END)
      fail(path, where + " is corrupt (" + (zs.msg ? zs.msg : "zlib error") + ")");
    const size_t produced = out.size() - zs.avail_out;
    if (head.size() < keep) head.append(out.data(), std::min(produced, keep - head.size()));
    total += produced;
    if (!expected && head.size() >= 8)
      expected = 8 + mat.u32(reinterpret_cast<const unsigned char*>(head.data()) + 4);
    if (expected && total > expected)
      fail(path, where + " inflates past the " + std::to_string(expected) + " bytes its tag gives");
  }
  if (total != expected)
    fail(path, where + " inflates to " + std::to_string(total) + " bytes, its tag gives " +
                   std::to_string(expected));
  return head;
}

// Walks the file's top-level elements (each must fit in the file) and checks each variable's
// head before libmatio reads any of it.
void check_mat_structure(const std::string& path, uint64_t file_bytes) {
  const Descriptor file(detail::open_regular(path));
  if (file_bytes < 128) fail(path, "shorter than a MAT v5 header (128 bytes)");
  unsigned char header[128];
  detail::pread_all(file.fd, header, sizeof(header), 0, path);
  const bool big_endian = header[126] == 'M' && header[127] == 'I';
  if (!big_endian && !(header[126] == 'I' && header[127] == 'M'))
    fail(path, "not a MAT v5 file (no byte-order mark at offset 126)");
  // Any other version sends libmatio to its v4 or v7.3 readers, which trust other headers.
  const unsigned version =
      big_endian ? (header[124] << 8) | header[125] : (header[125] << 8) | header[124];
  if (version != 0x0100)
    fail(path, "not a MAT v5 file (version " + std::to_string(version) + " at offset 124)");
  const MatBytes mat(big_endian);
  constexpr size_t kHead = 8 + 16 + 8 + 4 * kMaxRank + 8 + kMaxName;
  for (uint64_t at = 128; at + 8 <= file_bytes;) {
    unsigned char tag[8];
    detail::pread_all(file.fd, tag, sizeof(tag), at, path);
    const uint32_t type = mat.u32(tag);
    const uint64_t size = mat.u32(tag + 4);
    if (size > file_bytes - at - 8)
      fail(path, "the element at offset " + std::to_string(at) + " claims " + std::to_string(size) +
                     " bytes, more than the file holds");
    if (type == kMiMatrix && size > 0) {
      std::string head(static_cast<size_t>(std::min<uint64_t>(size, kHead)), '\0');
      detail::pread_all(file.fd, head.data(), head.size(), at + 8, path);
      check_variable_head(path, mat, head, size, at);
    } else if (type == kMiCompressed) {
      const std::string inner = inflate_variable(file.fd, at + 8, size, 8 + kHead, mat, path);
      const auto* tag = reinterpret_cast<const unsigned char*>(inner.data());
      if (inner.size() < 8 || mat.u32(tag) != kMiMatrix)
        fail(path, "the compressed element at offset " + std::to_string(at) +
                       " does not hold a variable");
      check_variable_head(path, mat, inner.substr(8), mat.u32(tag + 4), at);
    }
    at += 8 + size;
  }
}

struct CloseMat {
  void operator()(mat_t* mat) const { Mat_Close(mat); }
};
struct FreeVar {
  void operator()(matvar_t* var) const { Mat_VarFree(var); }
};
using MatFile = std::unique_ptr<mat_t, CloseMat>;
using MatVar = std::unique_ptr<matvar_t, FreeVar>;

// X's and y's headers, read without their data: kinds, ranks and sizes that no SVHN file has
// (complex data, dimensions whose data the file cannot hold even compressed) are refused before
// libmatio allocates for them.
void check_svhn_header(mat_t* mat, const std::string& path, uint64_t file_bytes) {
  for (const char* name : {"X", "y"}) {
    const MatVar info(Mat_VarReadInfo(mat, name));
    if (!info) fail(path, std::string("needs variables X and y (no readable ") + name + ")");
    std::vector<int64_t> dims;
    for (int d = 0; d < info->rank && d < 8; ++d)
      dims.push_back(static_cast<int64_t>(info->dims[d]));
    if (info->isComplex)
      fail(path, std::string(name) + " holds complex numbers (SVHN stores real ones)");
    const auto elements = util::checked_bytes(dims, 1);
    if (info->rank < 1 || info->rank > 8 || !elements || *elements > uint64_t{1032} * file_bytes) {
      fail(path, std::string(name) + "'s dimensions claim more elements than a file of " +
                     std::to_string(file_bytes) + " bytes can hold");
    }
  }
}

MatVar read_variable(mat_t* mat, const char* name, const std::string& path) {
  MatVar var(Mat_VarRead(mat, name));
  if (!var) fail(path, std::string("needs variables X and y (cannot read ") + name + ")");
  return var;
}

}  // namespace

std::vector<int64_t> read_svhn_mat(const std::string& path, const PixelSink& sink) {
  const uint64_t file_bytes =
      util::rethrow_as<DatasetError>([&] { return util::read_file_size(path); });
  check_mat_structure(path, file_bytes);
  const MatFile mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) fail(path, "not a MATLAB file libmatio can read (truncated or corrupt?)");
  check_svhn_header(mat.get(), path, file_bytes);
  const MatVar x = read_variable(mat.get(), "X", path);
  const MatVar y = read_variable(mat.get(), "y", path);
  if (x->data_type != MAT_T_UINT8 || x->isComplex || x->rank != 4 || x->dims[0] != 32 ||
      x->dims[1] != 32 || x->dims[2] != 3 || !x->data || x->nbytes != 3072 * x->dims[3]) {
    fail(path, "X must be uint8 32x32x3xN (rank " + std::to_string(x->rank) + " found)");
  }
  const int64_t n = static_cast<int64_t>(x->dims[3]);
  if (y->rank != 2 || y->isComplex || static_cast<int64_t>(y->dims[0] * y->dims[1]) != n ||
      !y->data || (y->data_type != MAT_T_DOUBLE && y->data_type != MAT_T_UINT8) ||
      y->nbytes != static_cast<size_t>(n) * (y->data_type == MAT_T_DOUBLE ? 8 : 1)) {
    fail(path, "y must hold N = " + std::to_string(n) + " labels (double or uint8)");
  }
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double v = y->data_type == MAT_T_DOUBLE ? static_cast<const double*>(y->data)[i]
                                                  : static_cast<const uint8_t*>(y->data)[i];
    if (v < 1 || v > 10 || v != std::floor(v))
      fail(path,
           "label " + std::to_string(v) + " of item " + std::to_string(i) + " is not in 1..10");
    labels[i] = static_cast<int64_t>(v) % 10;
  }
  // MATLAB is column-major: X(h, w, c, n) sits at h + 32 w + 1024 c + 3072 n; rows of pixels
  // ([n][c][h][w]) swap h and w within each 32x32 plane.
  const auto* in = static_cast<const uint8_t*>(x->data);
  uint8_t* out = sink({n, 3, 32, 32});
  for (int64_t plane = 0; plane < n * 3; ++plane) {
    const uint8_t* src = in + plane * 1024;
    uint8_t* dst = out + plane * 1024;
    for (int h = 0; h < 32; ++h) {
      for (int w = 0; w < 32; ++w) dst[h * 32 + w] = src[h + 32 * w];
    }
  }
  return labels;
}

}  // namespace ebm::data
