// A structural check of pickles that another library will unpickle: LibTorch keeps an archive's
// object graph in data.pkl, and its unpickler builds values that free themselves recursively, so a
// hostile file with lists nested a million levels deep overflows the stack. scan_pickle walks the
// opcodes (protocols 0 to 5) without building any value, records which container holds which, and
// measures the longest chain of containment before that unpickler sees a byte. Memory and time are
// proportional to the pickle's size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ebm::util {

struct PickleShape {
  int64_t depth = 0;       // containers on the longest chain of containment (0: only scalars)
  int64_t containers = 0;  // containers and objects built
};

// The deepest nesting LibTorch's own archives come near is a few dozen (modules in modules).
inline constexpr int64_t kMaxPickleDepth = 256;

// Scans the pickle in `bytes`. Throws std::runtime_error "<where>: ..." with the offset for an
// unknown opcode, a truncated argument, a stack underflow, a memo key read before it was written,
// a container that contains itself, or containers nested deeper than `max_depth`.
PickleShape scan_pickle(std::string_view bytes, const std::string& where,
                        int64_t max_depth = kMaxPickleDepth);

}  // namespace ebm::util
