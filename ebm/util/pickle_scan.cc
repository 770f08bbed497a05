#include "ebm/util/pickle_scan.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ebm::util {

namespace {

constexpr int64_t kScalar = -1;  // a stack item that contains nothing (numbers, strings, globals)

// The pickle machine with every value reduced to "a container with this id" or "a scalar": it
// keeps the stack, the marks and the memo, and records an edge for each containment.
class Scanner {
 public:
  Scanner(std::string_view bytes, const std::string& where) : bytes_(bytes), where_(where) {}

  PickleShape run(int64_t max_depth) {
    while (!stopped_) step();
    PickleShape shape;
    shape.containers = containers_;
    shape.depth = longest_chain(max_depth);
    return shape;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    throw std::runtime_error(where_ + ": offset " + std::to_string(opcode_at_) + ": " + what);
  }
  [[noreturn]] void bad_structure(const std::string& what) const {
    throw std::runtime_error(where_ + ": " + what);
  }

  void need(uint64_t n) const {
    if (n > bytes_.size() - pos_) bad("truncated (needs " + std::to_string(n) + " more bytes)");
  }
  uint64_t little_endian(int n) {
    need(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
    pos_ += static_cast<size_t>(n);
    return v;
  }
  void skip(uint64_t n) {
    need(n);
    pos_ += static_cast<size_t>(n);
  }
  std::string_view line() {
    const size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) bad("unterminated line argument");
    const std::string_view text = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return text;
  }
  uint64_t decimal_line() {
    const std::string_view text = line();
    uint64_t v = 0;
    if (text.empty() || text.size() > 18) bad("memo key is not a small decimal number");
    for (const char c : text) {
      if (c < '0' || c > '9') bad("memo key is not a decimal number");
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
  }

  void push(int64_t item) { stack_.push_back(item); }
  int64_t pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
      bad("pops an empty stack");
    const int64_t item = stack_.back();
    stack_.pop_back();
    return item;
  }
  int64_t top() const {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
      bad("reads the top of an empty stack");
    return stack_.back();
  }
  std::vector<int64_t> pop_to_mark() {
    if (marks_.empty()) bad("no MARK to pop to");
    std::vector<int64_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()),
                               stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }

  void contain(int64_t container, int64_t item) {
    if (container >= 0 && item >= 0) edges_.emplace_back(container, item);
  }
  int64_t container_of(const std::vector<int64_t>& items) {
    const int64_t id = containers_++;
    for (const int64_t item : items) contain(id, item);
    return id;
  }
  void add_to_top(const std::vector<int64_t>& items) {
    const int64_t container = top();
    for (const int64_t item : items) contain(container, item);
  }

  void memo_put(uint64_t key) { memo_[key] = top(); }
  void memo_get(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) bad("memo key " + std::to_string(key) + " read before it was written");
    push(it->second);
  }

  void step() {
    opcode_at_ = pos_;
    need(1);
    const auto op = static_cast<unsigned char>(bytes_[pos_++]);
    if (scalar(op) || memo(op) || container(op)) return;
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", op);
    bad(std::string("opcode ") + hex + " is not a pickle opcode");
  }

  // Opcodes that push a scalar, or change nothing the scan tracks.
  bool scalar(unsigned char op) {
    switch (op) {
      case 0x80:  // PROTO: the version, no value
        skip(1);
        return true;
      case 'K':   // BININT1
      case 0x82:  // EXT1
        skip(1);
        break;
      case 'M':   // BININT2
      case 0x83:  // EXT2
        skip(2);
        break;
      case 'J':   // BININT
      case 0x84:  // EXT4
        skip(4);
        break;
      case 'G':  // BINFLOAT
        skip(8);
        break;
      case 0x95:  // FRAME: only a hint for buffering
        little_endian(8);
        return true;
      case 'I':  // INT, LONG, FLOAT, STRING, UNICODE, PERSID: text lines
      case 'L':
      case 'F':
      case 'S':
      case 'V':
      case 'P':
        line();
        break;
      case 'c':  // GLOBAL "module\nname\n"
        line();
        line();
        break;
      case 0x8a:  // LONG1, SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE: 1-byte length
      case 'U':
      case 'C':
      case 0x8c:
        skip(little_endian(1));
        break;
      case 0x8b:  // LONG4, BINSTRING, BINBYTES, BINUNICODE: 4-byte length
      case 'T':
      case 'B':
      case 'X':
        skip(little_endian(4));
        break;
      case 0x8d:  // BINUNICODE8, BINBYTES8, BYTEARRAY8: 8-byte length
      case 0x8e:
      case 0x96:
        skip(little_endian(8));
        break;
      case 'N':   // NONE
      case 0x88:  // NEWTRUE
      case 0x89:  // NEWFALSE
      case 0x97:  // NEXT_BUFFER
        break;
      case 0x98:  // READONLY_BUFFER: the top stays what it was
        top();
        return true;
      case 0x93:  // STACK_GLOBAL: module and name strings become a global
        pop();
        pop();
        break;
      case '.':  // STOP
        pop();
        stopped_ = true;
        return true;
      case '0':  // POP
        if (!marks_.empty() && stack_.size() == marks_.back())
          marks_.pop_back();
        else
          pop();
        return true;
      case '1':  // POP_MARK
        pop_to_mark();
        return true;
      case '2':  // DUP
        push(top());
        return true;
      case '(':  // MARK
        marks_.push_back(stack_.size());
        return true;
      default:
        return false;
    }
    push(kScalar);
    return true;
  }

  bool memo(unsigned char op) {
    switch (op) {
      case 'p':  // PUT
        memo_put(decimal_line());
        return true;
      case 'q':  // BINPUT
        memo_put(little_endian(1));
        return true;
      case 'r':  // LONG_BINPUT
        memo_put(little_endian(4));
        return true;
      case 0x94:  // MEMOIZE
        memo_put(memo_.size());
        return true;
      case 'g':  // GET
        memo_get(decimal_line());
        return true;
      case 'h':  // BINGET
        memo_get(little_endian(1));
        return true;
      case 'j':  // LONG_BINGET
        memo_get(little_endian(4));
        return true;
      default:
        return false;
    }
  }

  // Opcodes that build a container or an object, or put items into one.
  bool container(unsigned char op) {
    switch (op) {
      case '}':   // EMPTY_DICT
      case ']':   // EMPTY_LIST
      case ')':   // EMPTY_TUPLE
      case 0x8f:  // EMPTY_SET
        push(container_of({}));
        return true;
      case 't':   // TUPLE
      case 'l':   // LIST
      case 'd':   // DICT
      case 0x91:  // FROZENSET
      case 'o':   // OBJ
        push(container_of(pop_to_mark()));
        return true;
      case 'i':  // INST "module\nname\n" over the items to the mark
        line();
        line();
        push(container_of(pop_to_mark()));
        return true;
      case 0x85:  // TUPLE1..3
      case 0x86:
      case 0x87:
        return tuple_of(op - 0x84);
      case 'R':   // REDUCE: callable, arguments
      case 0x81:  // NEWOBJ: class, arguments
        return tuple_of(2);
      case 0x92:  // NEWOBJ_EX: class, arguments, keyword arguments
        return tuple_of(3);
      case 'Q':  // BINPERSID: the persistent id becomes an object
        return tuple_of(1);
      case 'a': {  // APPEND
        const int64_t item = pop();
        add_to_top({item});
        return true;
      }
      case 's': {  // SETITEM
        const int64_t value = pop();
        const int64_t key = pop();
        add_to_top({key, value});
        return true;
      }
      case 'b': {  // BUILD: the object takes the state
        const int64_t state = pop();
        add_to_top({state});
        return true;
      }
      case 'e':   // APPENDS
      case 'u':   // SETITEMS
      case 0x90:  // ADDITEMS
        add_to_top(pop_to_mark());
        return true;
      default:
        return false;
    }
  }

  bool tuple_of(int n) {
    std::vector<int64_t> items(static_cast<size_t>(n));
    for (int i = n - 1; i >= 0; --i) items[static_cast<size_t>(i)] = pop();
    push(container_of(items));
    return true;
  }

  // The most containers on one chain of containment; a cycle or a chain longer than `max_depth`
  // is an error. Iterative: the graph may be as deep as the file is long.
  int64_t longest_chain(int64_t max_depth) {
    std::sort(edges_.begin(), edges_.end());
    std::vector<size_t> first(static_cast<size_t>(containers_) + 1, 0);
    for (const auto& e : edges_) ++first[static_cast<size_t>(e.first) + 1];
    for (size_t i = 1; i < first.size(); ++i) first[i] += first[i - 1];
    enum : char { kNew, kOpen, kDone };
    std::vector<char> state(static_cast<size_t>(containers_), kNew);
    std::vector<int64_t> depth(static_cast<size_t>(containers_), 1);
    std::vector<std::pair<int64_t, size_t>> path;  // container, next edge to follow
    int64_t deepest = 0;
    for (int64_t root = 0; root < containers_; ++root) {
      if (state[static_cast<size_t>(root)] != kNew) continue;
      path.emplace_back(root, first[static_cast<size_t>(root)]);
      state[static_cast<size_t>(root)] = kOpen;
      while (!path.empty()) {
        auto& [node, next] = path.back();
        if (next < first[static_cast<size_t>(node) + 1]) {
          const auto child = static_cast<size_t>(edges_[next++].second);
          if (state[child] == kOpen) bad_structure("a container contains itself (a cycle)");
          if (state[child] == kNew) {
            if (static_cast<int64_t>(path.size()) >= max_depth)
              bad_structure("containers nest deeper than " + std::to_string(max_depth) + " levels");
            state[child] = kOpen;
            path.emplace_back(static_cast<int64_t>(child), first[child]);
          } else {
            depth[static_cast<size_t>(node)] =
                std::max(depth[static_cast<size_t>(node)], depth[child] + 1);
          }
          continue;
        }
        const auto done = static_cast<size_t>(node);
        state[done] = kDone;
        if (depth[done] > max_depth)
          bad_structure("containers nest deeper than " + std::to_string(max_depth) + " levels");
        deepest = std::max(deepest, depth[done]);
        path.pop_back();
        if (!path.empty()) {
          const auto parent = static_cast<size_t>(path.back().first);
          depth[parent] = std::max(depth[parent], depth[done] + 1);
        }
      }
    }
    return deepest;
  }

  std::string_view bytes_;
  const std::string& where_;
  size_t pos_ = 0, opcode_at_ = 0;
  bool stopped_ = false;
  std::vector<int64_t> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<uint64_t, int64_t> memo_;
  int64_t containers_ = 0;
  std::vector<std::pair<int64_t, int64_t>> edges_;  // container, item
};

}  // namespace

PickleShape scan_pickle(std::string_view bytes, const std::string& where, int64_t max_depth) {
  return Scanner(bytes, where).run(max_depth);
}

}  // namespace ebm::util
