// The restricted unpickler of pickle.h: a pickle machine (protocols 2-5) that knows only the
// opcodes and globals of pickled dicts of NumPy arrays, lists and numbers.
#include "datasets/image/pickle.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "datasets/image/npz.h"
#include "datasets/image/npz_internal.h"
#include "ebm/util/sizes.h"

namespace ebm::data {

namespace detail {

namespace {

using PV = PickleValue;
using PVRef = std::shared_ptr<PickleValue>;

PVRef make(PV::Kind k) {
  auto v = std::make_shared<PV>();
  v->kind = k;
  return v;
}

// What a pickled batch of arrays can plausibly be: nested this deep at most, and (with shared
// references followed) no more values than twice those the pickle built plus a few, and no more
// array, bytes and str data than the file holds plus 1 MiB. A pickle that references one large
// buffer many times, or builds a cycle, exceeds these.
constexpr size_t kMaxDepth = 64;
constexpr size_t kSharedSlack = 1024;
constexpr size_t kDataSlack = size_t{1} << 20;

}  // namespace

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

namespace {

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
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  // Values can hold each other in a cycle (a list appended to itself through the memo), which
  // shared_ptr never frees: the links of every value outside the result (check_plausible keeps
  // cycles out of it) are cut here, whether unpickling succeeded or failed.
  ~Unpickler() {
    std::unordered_set<const PV*> kept;
    std::vector<const PV*> todo;
    if (result_) todo.push_back(result_.get());
    while (!todo.empty()) {
      const PV* v = todo.back();
      todo.pop_back();
      if (!kept.insert(v).second) continue;
      for (const auto& item : v->items) todo.push_back(item.get());
    }
    for (auto& v : created_) {
      if (!kept.count(v.get())) v->items.clear();
    }
  }

  // The value returned by run() that passed check_plausible: kept whole by the destructor.
  void keep(PVRef result) { result_ = std::move(result); }

  // Reads opcodes until STOP and returns the value it leaves on the stack.
  PVRef run() {  // NOLINT(readability-function-size): the opcode switch
    while (true) {
      const unsigned char op = next_op();
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
  // Reads the next opcode and remembers its offset for error messages.
  unsigned char next_op() {
    const size_t at = pos_;
    const auto op = static_cast<unsigned char>(take(1)[0]);
    op_at_ = at;
    return op;
  }
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
    const auto bytes = util::checked_bytes(arr.array.shape, arr.array.item_size());
    if (!bytes) bad("array shape " + arr.array.shape_text() + " holds more than 2^63 bytes");
    const uint64_t want = *bytes;
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

  PVRef make(PV::Kind k) {
    created_.push_back(detail::make(k));
    return created_.back();
  }

 public:
  // Walks the value STOP returned, following shared references, and refuses what no pickled
  // batch of arrays is (see kMaxDepth): the loaders that read the result may then copy or sum
  // everything they see without allocating more than the file justifies.
  void check_plausible(const PV& root) const {
    std::vector<std::pair<const PV*, size_t>> todo{{&root, 1}};
    size_t visits = 0, data = 0;
    while (!todo.empty()) {
      const auto [v, depth] = todo.back();
      todo.pop_back();
      if (depth > kMaxDepth)
        fail(path_, "pickle nests values more than " + std::to_string(kMaxDepth) + " deep");
      if (++visits > 2 * created_.size() + kSharedSlack || data > n_ + kDataSlack) {
        fail(path_,
             "pickle references its values more often than it builds them (shared or cyclic "
             "structure, which no pickled batch of arrays has)");
      }
      data += v->kind == PV::Kind::kStr ? v->s.size() : v->nbytes;
      for (const auto& item : v->items) todo.emplace_back(item.get(), depth + 1);
    }
  }

 private:
  const char* d_;
  size_t n_;
  // Every value built, so that the destructor can cut what the result does not hold.
  std::vector<PVRef> created_;
  PVRef result_;
  size_t pos_ = 0, op_at_ = 0;
  std::string path_;
  std::vector<PVRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PVRef> memo_;
};

}  // namespace

std::shared_ptr<PickleValue> unpickle(const char* data, size_t size, const std::string& path) {
  Unpickler unpickler(data, size, path);
  auto root = unpickler.run();
  unpickler.check_plausible(*root);
  unpickler.keep(root);
  return root;
}

}  // namespace detail

PickleValue::~PickleValue() {
  std::vector<std::shared_ptr<PickleValue>> pending = std::move(items);
  while (!pending.empty()) {
    std::shared_ptr<PickleValue> v = std::move(pending.back());
    pending.pop_back();
    // The last owner takes the children over before the value goes, so no destructor recurses.
    if (v && v.use_count() == 1) {
      for (auto& child : v->items) pending.push_back(std::move(child));
      v->items.clear();
    }
  }
}

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

}  // namespace ebm::data
