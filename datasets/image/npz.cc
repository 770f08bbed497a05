// The files of npz.h: .npy headers, zip/npz archives and the memory-mapped pickle files (the
// unpickler that reads them is pickle.cc).
#include "datasets/image/npz.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <system_error>

#include "datasets/image/npz_internal.h"
#include "datasets/image/pickle.h"
#include "ebm/util/files.h"
#include "ebm/util/sizes.h"

namespace ebm::data {

namespace {

using detail::fail;
using detail::le;
using detail::open_regular;
using detail::pread_all;

std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

}  // namespace

void detail::pread_all(int fd, void* buf, size_t n, uint64_t offset, const std::string& where) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(where, "read failed: " + errno_text());
    if (r == 0)
      fail(where, "truncated: needed " + std::to_string(n) + " bytes at offset " +
                      std::to_string(offset) + ", file ends after " +
                      std::to_string(offset + done));
    done += static_cast<size_t>(r);
  }
}

size_t NpyHeader::item_size() const {
  if (descr.size() < 3) return 0;
  return static_cast<size_t>(std::atoi(descr.c_str() + 2));
}

int64_t NpyHeader::count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string NpyHeader::shape_text() const {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

size_t parse_npy_header(const char* data, size_t size, const std::string& where, NpyHeader* out) {
  static const char kMagic[] = "\x93NUMPY";
  if (size < 10) return 0;
  if (std::memcmp(data, kMagic, 6) != 0) fail(where, "not an .npy array (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(data[6]);
  const auto* u = reinterpret_cast<const unsigned char*>(data);
  size_t len = 0, start = 0;
  if (major == 1) {
    len = le(u + 8, 2), start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return 0;
    len = le(u + 8, 4), start = 12;
  } else {
    fail(where, ".npy version " + std::to_string(major) + " is not supported (1, 2 or 3)");
  }
  if (len > (1u << 20))
    fail(where, ".npy header of " + std::to_string(len) + " bytes is implausible");
  if (size < start + len) return 0;
  const std::string h(data + start, len);
  auto value_of = [&](const std::string& key) -> std::string {
    const size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) fail(where, ".npy header lacks '" + key + "': " + h);
    size_t v = h.find(':', k);
    if (v == std::string::npos) fail(where, "malformed .npy header: " + h);
    ++v;
    while (v < h.size() && h[v] == ' ') ++v;
    return h.substr(v);
  };
  std::string d = value_of("descr");
  if (d.empty() || (d[0] != '\'' && d[0] != '"'))
    fail(where, "'descr' is not a plain type string: " + h);
  const size_t e = d.find(d[0], 1);
  if (e == std::string::npos) fail(where, "malformed .npy header: " + h);
  out->descr = d.substr(1, e - 1);
  const std::string fo = value_of("fortran_order");
  out->fortran_order = fo.rfind("True", 0) == 0;
  if (!out->fortran_order && fo.rfind("False", 0) != 0)
    fail(where, "malformed 'fortran_order': " + h);
  const std::string sh = value_of("shape");
  if (sh.empty() || sh[0] != '(') fail(where, "malformed 'shape': " + h);
  const size_t close = sh.find(')');
  if (close == std::string::npos) fail(where, "malformed 'shape': " + h);
  out->shape.clear();
  std::istringstream in(sh.substr(1, close - 1));
  std::string tok;
  while (std::getline(in, tok, ',')) {
    tok.erase(std::remove(tok.begin(), tok.end(), ' '), tok.end());
    if (tok.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    if (*end != '\0' || v < 0) fail(where, "malformed dimension '" + tok + "' in 'shape': " + h);
    out->shape.push_back(v);
  }
  const std::string& t = out->descr;
  const bool known = t.size() >= 3 && (t[0] == '<' || t[0] == '>' || t[0] == '|' || t[0] == '=') &&
                     (t[1] == 'u' || t[1] == 'i' || t[1] == 'f' || t[1] == 'b') &&
                     out->item_size() >= 1 && out->item_size() <= 8;
  if (!known) fail(where, "unsupported dtype '" + t + "' (expected numbers such as |u1, <i8, <f4)");
  if (!util::checked_bytes(out->shape, out->item_size()))
    fail(where, "shape " + out->shape_text() + " of " + t + " holds more than 2^63 bytes");
  return start + len;
}

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  fd_ = open_regular(path);
  // A constructor that throws runs no destructor: the descriptor is closed here on every error
  // (each malformed archive leaked one before, until opens failed with EMFILE).
  try {
    read_directory();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

void ZipArchive::read_directory() {
  const std::string& path = path_;
  struct stat st {};
  ::fstat(fd_, &st);
  file_size_ = static_cast<uint64_t>(st.st_size);
  // End of central directory: within the last 64 KiB + 22 bytes.
  const uint64_t tail = std::min<uint64_t>(file_size_, 65536 + 22);
  std::vector<unsigned char> buf(tail);
  pread_all(fd_, buf.data(), tail, file_size_ - tail, path);
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail) - 22; i >= 0; --i) {
    if (le(&buf[i], 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    fail(path, "not a zip/npz archive (no end-of-central-directory record; truncated?)");
  }
  uint64_t entries = le(&buf[eocd + 10], 2), cd_size = le(&buf[eocd + 12], 4),
           cd_offset = le(&buf[eocd + 16], 4);
  if (entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    // Zip64: the locator sits just before the EOCD and points to the zip64 EOCD record.
    if (eocd < 20 || le(&buf[eocd - 20], 4) != 0x07064b50) {
      fail(path, "zip64 sizes without a zip64 locator");
    }
    const uint64_t z64 = le(&buf[eocd - 20 + 8], 8);
    unsigned char rec[56];
    pread_all(fd_, rec, sizeof(rec), z64, path);
    if (le(rec, 4) != 0x06064b50) {
      fail(path, "bad zip64 end-of-central-directory record");
    }
    entries = le(rec + 32, 8), cd_size = le(rec + 40, 8), cd_offset = le(rec + 48, 8);
  }
  if (cd_offset > file_size_ || cd_size > file_size_ - cd_offset) {
    fail(path, "central directory (" + std::to_string(cd_size) + " bytes at " +
                   std::to_string(cd_offset) + ") lies outside the file of " +
                   std::to_string(file_size_) + " bytes");
  }
  std::vector<unsigned char> cd(cd_size);
  {
    pread_all(fd_, cd.data(), cd_size, cd_offset, path);
    size_t p = 0;
    for (uint64_t e = 0; e < entries; ++e) {
      if (p + 46 > cd.size() || le(&cd[p], 4) != 0x02014b50)
        fail(path, "corrupt central directory entry " + std::to_string(e));
      Member m;
      m.method = static_cast<uint16_t>(le(&cd[p + 10], 2));
      m.crc = static_cast<uint32_t>(le(&cd[p + 16], 4));
      m.compressed = le(&cd[p + 20], 4);
      m.uncompressed = le(&cd[p + 24], 4);
      const size_t name_len = le(&cd[p + 28], 2), extra_len = le(&cd[p + 30], 2),
                   comment_len = le(&cd[p + 32], 2);
      m.local_offset = le(&cd[p + 42], 4);
      if (p + 46 + name_len + extra_len + comment_len > cd.size())
        fail(path, "corrupt central directory entry " + std::to_string(e));
      const std::string name(reinterpret_cast<const char*>(&cd[p + 46]), name_len);
      // Zip64 extended information: the 0xffffffff fields, in order.
      size_t x = p + 46 + name_len;
      const size_t xend = x + extra_len;
      while (x + 4 <= xend) {
        const uint16_t id = static_cast<uint16_t>(le(&cd[x], 2));
        const uint16_t sz = static_cast<uint16_t>(le(&cd[x + 2], 2));
        if (id == 0x0001) {
          size_t q = x + 4;
          auto take = [&](uint64_t& field) {
            if (field == 0xffffffff && q + 8 <= x + 4 + sz) {
              field = le(&cd[q], 8);
              q += 8;
            }
          };
          take(m.uncompressed);
          take(m.compressed);
          take(m.local_offset);
        }
        x += 4 + sz;
      }
      check_member(name, m);
      members_[name] = m;
      p += 46 + name_len + extra_len + comment_len;
    }
  }
}

void ZipArchive::check_member(const std::string& name, const Member& m) const {
  if (m.method != 0 && m.method != 8) {
    fail(path_, "member '" + name + "' uses compression method " + std::to_string(m.method) +
                    " (only stored and deflate are supported)");
  }
  // Deflate expands at most 1032:1; stored members are their own size. A directory that promises
  // more is refused before anything is allocated for the member.
  const bool plausible =
      m.compressed <= file_size_ && (m.method == 0 ? m.uncompressed == m.compressed
                                                   : m.uncompressed <= m.compressed * 1032 + 1024);
  if (!plausible) {
    fail(path_, "member '" + name + "' claims " + std::to_string(m.uncompressed) + " bytes from " +
                    std::to_string(m.compressed) + " stored ones");
  }
}

ZipArchive::~ZipArchive() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  for (const auto& [n, m] : members_) out.push_back(n);
  return out;
}

uint64_t ZipArchive::uncompressed_size(const std::string& name) const {
  auto it = members_.find(name);
  if (it == members_.end()) fail(path_, "no member '" + name + "'");
  return it->second.uncompressed;
}

void ZipArchive::read(const std::string& name,
                      const std::function<bool(const char*, size_t)>& sink) const {
  auto it = members_.find(name);
  if (it == members_.end()) {
    std::string all;
    for (const auto& [n, m] : members_) all += (all.empty() ? "" : ", ") + n;
    fail(path_, "no member '" + name + "' (members: " + all + ")");
  }
  const Member& m = it->second;
  const std::string where = path_ + " member '" + name + "'";
  unsigned char local[30];
  pread_all(fd_, local, sizeof(local), m.local_offset, where);
  if (le(local, 4) != 0x04034b50)
    fail(where, "bad local header at offset " + std::to_string(m.local_offset));
  uint64_t pos = m.local_offset + 30 + le(local + 26, 2) + le(local + 28, 2);
  if (pos + m.compressed > file_size_) {
    fail(where, "data (" + std::to_string(m.compressed) + " bytes at " + std::to_string(pos) +
                    ") run past the end of the file (" + std::to_string(file_size_) +
                    " bytes): truncated archive");
  }
  constexpr size_t kChunk = 1 << 20;
  // Buffers no larger than the member needs: archives of many small arrays stay cheap to read.
  std::vector<char> in(static_cast<size_t>(std::min<uint64_t>(kChunk, m.compressed + 1)));
  std::vector<char> out(static_cast<size_t>(std::min<uint64_t>(kChunk, m.uncompressed + 1)));
  uint64_t left = m.compressed, produced = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  bool stopped = false;
  if (m.method == 0) {
    while (left > 0 && !stopped) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
      pread_all(fd_, in.data(), n, pos, where);
      pos += n, left -= n, produced += n;
      crc = crc32(crc, reinterpret_cast<const Bytef*>(in.data()), static_cast<uInt>(n));
      stopped = !sink(in.data(), n);
    }
  } else {
    detail::Inflater inflater(-MAX_WBITS, where);
    z_stream& zs = inflater.stream;
    int rc = Z_OK;
    while (rc != Z_STREAM_END && !stopped) {
      if (zs.avail_in == 0) {
        if (left == 0) {
          fail(where, "deflate stream ends early after " + std::to_string(produced) + " bytes");
        }
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
        pread_all(fd_, in.data(), n, pos, where);
        pos += n, left -= n;
        zs.next_in = reinterpret_cast<Bytef*>(in.data());
        zs.avail_in = static_cast<uInt>(n);
      }
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        const std::string msg = zs.msg ? zs.msg : std::to_string(rc);
        fail(where,
             "corrupt deflate data after " + std::to_string(produced) + " bytes (" + msg + ")");
      }
      const size_t n = out.size() - zs.avail_out;
      produced += n;
      if (produced > m.uncompressed) {
        fail(where,
             "inflates past its declared size of " + std::to_string(m.uncompressed) + " bytes");
      }
      crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(n));
      if (n) stopped = !sink(out.data(), n);
    }
  }
  if (stopped) return;
  if (produced != m.uncompressed) {
    fail(where, "holds " + std::to_string(produced) + " bytes, the directory says " +
                    std::to_string(m.uncompressed));
  }
  if (static_cast<uint32_t>(crc) != m.crc) fail(where, "CRC-32 mismatch: corrupt member");
}

std::string ZipArchive::read_all(const std::string& name) const {
  std::string out;
  read(name, [&](const char* p, size_t n) {
    out.append(p, n);
    return true;
  });
  return out;
}

namespace {

// The data bytes the header promises (parse_npy_header checked that they fit in 63 bits),
// refused before anything is allocated for them when the member cannot hold them.
uint64_t promised_bytes(const ZipArchive& zip, const std::string& name, const NpyHeader& h,
                        size_t header_len, const std::string& where) {
  const uint64_t want = *util::checked_bytes(h.shape, h.item_size());
  const uint64_t member = zip.uncompressed_size(name + ".npy");
  const uint64_t available = member > header_len ? member - header_len : 0;
  if (const auto e =
          util::exceeds_available(want, available, "shape " + h.shape_text() + " of " + h.descr)) {
    fail(where, *e + " in the member");
  }
  return want;
}

}  // namespace

NpyHeader npz_array_header(const ZipArchive& zip, const std::string& name) {
  const std::string where = zip.path() + " array '" + name + "'";
  std::string head;
  NpyHeader h;
  size_t hl = 0;
  zip.read(name + ".npy", [&](const char* p, size_t n) {
    head.append(p, n);
    hl = parse_npy_header(head.data(), head.size(), where, &h);
    return hl == 0;
  });
  if (hl == 0) fail(where, "too short for an .npy header");
  promised_bytes(zip, name, h, hl, where);
  return h;
}

NpyHeader read_npz_array(const ZipArchive& zip, const std::string& name,
                         const std::function<void*(const NpyHeader&)>& dest) {
  const std::string where = zip.path() + " array '" + name + "'";
  std::string head;
  NpyHeader h;
  size_t header_len = 0;
  char* out = nullptr;
  uint64_t want = 0, got = 0;
  zip.read(name + ".npy", [&](const char* p, size_t n) {
    if (!out) {
      head.append(p, n);
      header_len = parse_npy_header(head.data(), head.size(), where, &h);
      if (header_len == 0) return true;
      if (h.fortran_order) fail(where, "Fortran-ordered arrays are not supported");
      if (!h.little_endian() && h.item_size() > 1) fail(where, "big-endian data are not supported");
      want = promised_bytes(zip, name, h, header_len, where);
      out = static_cast<char*>(dest(h));
      p = head.data() + header_len;
      n = head.size() - header_len;
    }
    if (got + n > want) fail(where, "holds more data than its shape " + h.shape_text() + " needs");
    if (n) std::memcpy(out + got, p, n);  // `out` may be null for an empty array
    got += n;
    return true;
  });
  if (!out) fail(where, "too short for an .npy header");
  if (got != want) {
    fail(where, "shape " + h.shape_text() + " of " + h.descr + " needs " + std::to_string(want) +
                    " bytes, the member holds " + std::to_string(got));
  }
  return h;
}

// ------------------------------------------------------------------ memory-mapped pickles ---

RestrictedPickle::RestrictedPickle(const std::string& path) : path_(path) {
  const int fd = open_regular(path);
  struct stat st {};
  ::fstat(fd, &st);
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    fail(path, "empty file");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, "cannot map: " + errno_text());
  }
  try {
    root_ = detail::unpickle(static_cast<const char*>(map_), size_, path);
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
  if (root_->kind != PickleValue::Kind::kDict) {
    ::munmap(map_, size_);
    map_ = nullptr;
    fail(path,
         std::string("pickle holds a ") + detail::kind_name(root_->kind) + ", expected a dict");
  }
}

RestrictedPickle::~RestrictedPickle() {
  if (map_) ::munmap(map_, size_);
}

}  // namespace ebm::data
