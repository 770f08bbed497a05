#include "ebm/util/sizes.h"

#include <limits>

namespace ebm::util {

std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::optional<uint64_t> checked_bytes(const std::vector<int64_t>& dims, uint64_t item_size) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t n = item_size;
  for (const int64_t d : dims) {
    if (d < 0) return std::nullopt;
    const auto next = checked_mul(n, static_cast<uint64_t>(d));
    if (!next || *next > kMax) return std::nullopt;
    n = *next;
  }
  return n;
}

std::optional<std::string> exceeds_available(uint64_t needed, uint64_t available,
                                             const std::string& what) {
  if (needed <= available) return std::nullopt;
  return what + " needs " + std::to_string(needed) + " bytes, only " + std::to_string(available) +
         " are there";
}

}  // namespace ebm::util
