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

namespace ebm::data {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DatasetError(where + ": " + what);
}

std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

uint64_t le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void pread_all(int fd, void* buf, size_t n, uint64_t offset, const std::string& where) {
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

}  // namespace

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
  return start + len;
}

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, "cannot open: " + errno_text());
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
    ::close(fd_);
    fail(path, "not a zip/npz archive (no end-of-central-directory record; truncated?)");
  }
  uint64_t entries = le(&buf[eocd + 10], 2), cd_size = le(&buf[eocd + 12], 4),
           cd_offset = le(&buf[eocd + 16], 4);
  if (entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    // Zip64: the locator sits just before the EOCD and points to the zip64 EOCD record.
    if (eocd < 20 || le(&buf[eocd - 20], 4) != 0x07064b50) {
      ::close(fd_);
      fail(path, "zip64 sizes without a zip64 locator");
    }
    const uint64_t z64 = le(&buf[eocd - 20 + 8], 8);
    unsigned char rec[56];
    pread_all(fd_, rec, sizeof(rec), z64, path);
    if (le(rec, 4) != 0x06064b50) {
      ::close(fd_);
      fail(path, "bad zip64 end-of-central-directory record");
    }
    entries = le(rec + 32, 8), cd_size = le(rec + 40, 8), cd_offset = le(rec + 48, 8);
  }
  if (cd_offset + cd_size > file_size_ || cd_size > (1u << 30)) {
    ::close(fd_);
    fail(path, "central directory (" + std::to_string(cd_size) + " bytes at " +
                   std::to_string(cd_offset) + ") lies outside the file of " +
                   std::to_string(file_size_) + " bytes");
  }
  std::vector<unsigned char> cd(cd_size);
  try {
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
      if (m.method != 0 && m.method != 8) {
        fail(path, "member '" + name + "' uses compression method " + std::to_string(m.method) +
                       " (only stored and deflate are supported)");
      }
      members_[name] = m;
      p += 46 + name_len + extra_len + comment_len;
    }
  } catch (...) {
    ::close(fd_);
    throw;
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
  std::vector<char> in(kChunk), out(kChunk);
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
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(where, "zlib init failed");
    int rc = Z_OK;
    while (rc != Z_STREAM_END && !stopped) {
      if (zs.avail_in == 0) {
        if (left == 0) {
          inflateEnd(&zs);
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
        inflateEnd(&zs);
        fail(where,
             "corrupt deflate data after " + std::to_string(produced) + " bytes (" + msg + ")");
      }
      const size_t n = out.size() - zs.avail_out;
      produced += n;
      if (produced > m.uncompressed) {
        inflateEnd(&zs);
        fail(where,
             "inflates past its declared size of " + std::to_string(m.uncompressed) + " bytes");
      }
      crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(n));
      if (n) stopped = !sink(out.data(), n);
    }
    inflateEnd(&zs);
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
      want = static_cast<uint64_t>(h.count()) * h.item_size();
      out = static_cast<char*>(dest(h));
      p = head.data() + header_len;
      n = head.size() - header_len;
    }
    if (got + n > want) fail(where, "holds more data than its shape " + h.shape_text() + " needs");
    std::memcpy(out + got, p, n);
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

}  // namespace ebm::data

// ---------------------------------------------------------------- restricted pickle reader ---

namespace ebm::data {

namespace {

using PV = PickleValue;
using PVRef = std::shared_ptr<PickleValue>;

PVRef make(PV::Kind k) {
  auto v = std::make_shared<PV>();
  v->kind = k;
  return v;
}

const char* kind_name(PV::Kind k) {
  switch (k) {
    case PV::Kind::kNone:
      return "None";
    case PV::Kind::kBool:
      return "bool";
    case PV::Kind::kInt:
      return "int";
    case PV::Kind::kFloat:
      return "float";
    case PV::Kind::kStr:
      return "str";
    case PV::Kind::kBytes:
      return "bytes";
    case PV::Kind::kTuple:
      return "tuple";
    case PV::Kind::kList:
      return "list";
    case PV::Kind::kDict:
      return "dict";
    case PV::Kind::kArray:
      return "ndarray";
    case PV::Kind::kDtype:
      return "dtype";
    case PV::Kind::kGlobal:
      return "global";
  }
  return "?";
}

// Decodes UTF-8 to code points; _codecs.encode(s, 'latin1') maps each (<= 255) to one byte.
std::string latin1_from_utf8(const std::string& s, const std::string& where) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if ((c & 0xe0) == 0xc0 && i + 1 < s.size()) {
      const unsigned cp = ((c & 0x1fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3fu);
      if (cp > 0xff) fail(where, "latin-1 encoded bytes contain a code point above 255");
      out.push_back(static_cast<char>(cp));
      i += 2;
    } else {
      fail(where, "latin-1 encoded bytes contain a code point above 255");
    }
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, std::string path)
      : d_(data), n_(size), path_(std::move(path)) {}

  PVRef run() {
    while (true) {
      const size_t at = pos_;
      const auto op = static_cast<unsigned char>(take(1)[0]);
      op_at_ = at;
      switch (op) {
        case 0x80:
          take(1);
          break;  // PROTO
        case 0x95:
          take(8);
          break;     // FRAME (length only; data follow inline)
        case '.': {  // STOP
          if (stack_.size() != 1)
            bad("STOP with " + std::to_string(stack_.size()) + " values on the stack");
          return stack_.back();
        }
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '}':
          push(make(PV::Kind::kDict));
          break;
        case ']':
          push(make(PV::Kind::kList));
          break;
        case ')':
          push(make(PV::Kind::kTuple));
          break;
        case 't': {
          auto t = make(PV::Kind::kTuple);
          t->items = pop_mark();
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t k = op - 0x84;
          need(k);
          auto t = make(PV::Kind::kTuple);
          t->items.assign(stack_.end() - k, stack_.end());
          stack_.resize(stack_.size() - k);
          push(t);
          break;
        }
        case 's': {  // SETITEM
          need(3);
          auto v = pop(), k = pop();
          auto& dct = top(PV::Kind::kDict, "SETITEM");
          dct.items.push_back(k);
          dct.items.push_back(v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_mark();
          if (items.size() % 2) bad("SETITEMS with an odd number of values");
          auto& dct = top(PV::Kind::kDict, "SETITEMS");
          dct.items.insert(dct.items.end(), items.begin(), items.end());
          break;
        }
        case 'a': {  // APPEND
          need(2);
          auto v = pop();
          top(PV::Kind::kList, "APPEND").items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_mark();
          auto& lst = top(PV::Kind::kList, "APPENDS");
          lst.items.insert(lst.items.end(), items.begin(), items.end());
          break;
        }
        case 'J':
          push_int(static_cast<int32_t>(le(u(take(4)), 4)));
          break;
        case 'K':
          push_int(le(u(take(1)), 1));
          break;
        case 'M':
          push_int(le(u(take(2)), 2));
          break;
        case 0x8a: {  // LONG1
          const size_t k = le(u(take(1)), 1);
          if (k > 8) bad("integer of " + std::to_string(k) + " bytes is too large");
          const unsigned char* p = u(take(k));
          uint64_t v = k ? le(p, static_cast<int>(k)) : 0;
          if (k && k < 8 && (p[k - 1] & 0x80)) v |= ~uint64_t{0} << (8 * k);  // sign-extend
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT (big-endian)
          const unsigned char* p = u(take(8));
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
          auto v = make(PV::Kind::kFloat);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'N':
          push(make(PV::Kind::kNone));
          break;
        case 0x88:
        case 0x89: {
          auto v = make(PV::Kind::kBool);
          v->i = op == 0x88;
          push(v);
          break;
        }
        case 'X':
          push_str(le(u(take(4)), 4));
          break;
        case 0x8c:
          push_str(le(u(take(1)), 1));
          break;
        case 0x8d:
          push_str(le(u(take(8)), 8));
          break;
        case 'B':
        case 'T':
          push_bytes(le(u(take(4)), 4));
          break;
        case 'C':
        case 'U':
          push_bytes(le(u(take(1)), 1));
          break;
        case 0x8e:
        case 0x96:
          push_bytes(le(u(take(8)), 8));
          break;
        case 'c': {  // GLOBAL "module\nname\n"
          const std::string module = line(), name = line();
          push_global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          need(2);
          auto name = pop(), module = pop();
          if (module->kind != PV::Kind::kStr || name->kind != PV::Kind::kStr)
            bad("STACK_GLOBAL needs two str");
          push_global(module->s + "." + name->s);
          break;
        }
        case 'R': {  // REDUCE
          need(2);
          auto args = pop(), fn = pop();
          push(reduce(*fn, *args));
          break;
        }
        case 'b': {  // BUILD
          need(2);
          auto state = pop();
          build(*stack_.back(), *state);
          break;
        }
        case 'q':
          memo_[le(u(take(1)), 1)] = peek();
          break;
        case 'r':
          memo_[le(u(take(4)), 4)] = peek();
          break;
        case 0x94:
          memo_[memo_.size()] = peek();
          break;
        case 'h':
          push(memo(le(u(take(1)), 1)));
          break;
        case 'j':
          push(memo(le(u(take(4)), 4)));
          break;
        case '0':
          need(1);
          stack_.pop_back();
          break;
        default: {
          std::ostringstream m;
          m << "opcode 0x" << std::hex << static_cast<int>(op)
            << " is not allowed (this reader accepts only dicts of NumPy arrays, lists and "
               "numbers)";
          bad(m.str());
        }
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(path_, "pickle at offset " + std::to_string(op_at_) + ": " + what);
  }
  const char* take(size_t k) {
    if (k > n_ - pos_) {
      fail(path_, "pickle truncated at offset " + std::to_string(pos_) + " (needs " +
                      std::to_string(k) + " more bytes, " + std::to_string(n_ - pos_) + " left)");
    }
    const char* p = d_ + pos_;
    pos_ += k;
    return p;
  }
  static const unsigned char* u(const char* p) { return reinterpret_cast<const unsigned char*>(p); }
  std::string line() {
    const size_t start = pos_;
    while (pos_ < n_ && d_[pos_] != '\n') ++pos_;
    if (pos_ >= n_) bad("unterminated GLOBAL");
    return std::string(d_ + start, d_ + pos_++);
  }
  void need(size_t k) const {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + k) bad("stack underflow");
  }
  void push(PVRef v) { stack_.push_back(std::move(v)); }
  PVRef pop() {
    need(1);
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PVRef peek() const {
    if (stack_.empty()) bad("memo store on an empty stack");
    return stack_.back();
  }
  PV& top(PV::Kind k, const char* op) {
    need(1);
    if (stack_.back()->kind != k) bad(std::string(op) + " on a " + kind_name(stack_.back()->kind));
    return *stack_.back();
  }
  std::vector<PVRef> pop_mark() {
    if (marks_.empty()) bad("no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PVRef> items(stack_.begin() + static_cast<long>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PVRef memo(uint64_t k) const {
    auto it = memo_.find(k);
    if (it == memo_.end()) bad("memo key " + std::to_string(k) + " was never stored");
    return it->second;
  }
  void push_int(int64_t v) {
    auto p = make(PV::Kind::kInt);
    p->i = v;
    push(p);
  }
  void push_str(uint64_t len) {
    auto p = make(PV::Kind::kStr);
    const char* s = take(static_cast<size_t>(len));
    p->s.assign(s, static_cast<size_t>(len));
    push(p);
  }
  void push_bytes(uint64_t len) {
    auto p = make(PV::Kind::kBytes);
    p->bytes = take(static_cast<size_t>(len));
    p->nbytes = static_cast<size_t>(len);
    push(p);
  }
  void push_global(const std::string& name) {
    static const char* allowed[] = {"numpy.core.multiarray._reconstruct",
                                    "numpy._core.multiarray._reconstruct",
                                    "numpy.core.numeric._frombuffer",
                                    "numpy._core.numeric._frombuffer",
                                    "numpy.ndarray",
                                    "numpy.dtype",
                                    "_codecs.encode"};
    for (const char* a : allowed) {
      if (name == a) {
        auto g = make(PV::Kind::kGlobal);
        g->s = name;
        push(g);
        return;
      }
    }
    bad("global '" + name + "' is not allowed (only NumPy array reconstruction)");
  }
  static bool ends_with(const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  }
  std::vector<int64_t> shape_of(const PV& t) const {
    if (t.kind != PV::Kind::kTuple) bad("array shape is a " + std::string(kind_name(t.kind)));
    std::vector<int64_t> shape;
    for (const auto& d : t.items) {
      if (d->kind != PV::Kind::kInt || d->i < 0) bad("array shape holds a non-integer");
      shape.push_back(d->i);
    }
    return shape;
  }
  void set_data(PV& arr, const PV& data) const {
    if (data.kind != PV::Kind::kBytes)
      bad("array data is a " + std::string(kind_name(data.kind)) + " (object arrays are refused)");
    const uint64_t want = static_cast<uint64_t>(arr.array.count()) * arr.array.item_size();
    if (data.nbytes != want) {
      bad("array of shape " + arr.array.shape_text() + " and dtype " + arr.array.descr + " needs " +
          std::to_string(want) + " bytes, the pickle holds " + std::to_string(data.nbytes));
    }
    arr.bytes = data.bytes;
    arr.nbytes = data.nbytes;
    arr.owned = data.owned;
    if (!arr.owned.empty()) arr.bytes = arr.owned.data();
  }
  PVRef reduce(const PV& fn, const PV& args) {
    if (fn.kind != PV::Kind::kGlobal) bad("REDUCE of a " + std::string(kind_name(fn.kind)));
    if (args.kind != PV::Kind::kTuple) bad("REDUCE arguments are not a tuple");
    const auto& a = args.items;
    if (ends_with(fn.s, "._reconstruct")) {
      return make(PV::Kind::kArray);  // filled by BUILD
    }
    if (fn.s == "numpy.dtype") {
      if (a.empty() || a[0]->kind != PV::Kind::kStr) bad("dtype() without a type string");
      const std::string& t = a[0]->s;
      if (t.size() < 2 || std::string("uifb").find(t[0]) == std::string::npos)
        bad("unsupported dtype '" + t + "'");
      auto dt = make(PV::Kind::kDtype);
      dt->s = (t[1] == '1' ? "|" : "<") + t;
      return dt;
    }
    if (fn.s == "_codecs.encode") {
      if (a.size() != 2 || a[0]->kind != PV::Kind::kStr)
        bad("_codecs.encode() needs (str, 'latin1')");
      auto b = make(PV::Kind::kBytes);
      b->owned = latin1_from_utf8(a[0]->s, path_);
      b->bytes = b->owned.data();
      b->nbytes = b->owned.size();
      return b;
    }
    if (ends_with(fn.s, "._frombuffer")) {
      if (a.size() != 4 || a[1]->kind != PV::Kind::kDtype)
        bad("_frombuffer() needs (buffer, dtype, shape, order)");
      if (a[3]->kind == PV::Kind::kStr && a[3]->s == "F")
        bad("Fortran-ordered arrays are not supported");
      auto arr = make(PV::Kind::kArray);
      arr->array.descr = a[1]->s;
      arr->array.shape = shape_of(*a[2]);
      set_data(*arr, *a[0]);
      return arr;
    }
    bad("calling '" + fn.s + "' is not allowed");
  }
  void build(PV& obj, const PV& state) const {
    if (state.kind != PV::Kind::kTuple) bad("BUILD state is not a tuple");
    const auto& s = state.items;
    if (obj.kind == PV::Kind::kDtype) {
      if (s.size() < 2 || s[1]->kind != PV::Kind::kStr || s[1]->s.size() != 1)
        bad("malformed dtype state");
      const char order = s[1]->s[0] == '=' ? '<' : s[1]->s[0];
      if (order == '>' && obj.s.substr(2) != "1") bad("big-endian arrays are not supported");
      obj.s[0] = obj.s[2] == '1' ? '|' : order;
      return;
    }
    if (obj.kind == PV::Kind::kArray) {
      if (s.size() != 5 || s[2]->kind != PV::Kind::kDtype) bad("malformed ndarray state");
      if (s[3]->kind == PV::Kind::kBool && s[3]->i) bad("Fortran-ordered arrays are not supported");
      obj.array.descr = s[2]->s;
      obj.array.shape = shape_of(*s[1]);
      set_data(obj, *s[4]);
      return;
    }
    bad("BUILD of a " + std::string(kind_name(obj.kind)) + " is not allowed");
  }

  const char* d_;
  size_t n_;
  size_t pos_ = 0, op_at_ = 0;
  std::string path_;
  std::vector<PVRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PVRef> memo_;
};

}  // namespace

const PickleValue* PickleValue::get(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const auto& k = *items[i];
    if ((k.kind == Kind::kStr && k.s == key) ||
        (k.kind == Kind::kBytes && std::string(k.bytes, k.nbytes) == key)) {
      return items[i + 1].get();
    }
  }
  return nullptr;
}

RestrictedPickle::RestrictedPickle(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: " + errno_text());
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
    root_ = Unpickler(static_cast<const char*>(map_), size_, path).run();
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
  if (root_->kind != PickleValue::Kind::kDict) {
    ::munmap(map_, size_);
    map_ = nullptr;
    fail(path, std::string("pickle holds a ") + kind_name(root_->kind) + ", expected a dict");
  }
}

RestrictedPickle::~RestrictedPickle() {
  if (map_) ::munmap(map_, size_);
}

}  // namespace ebm::data
