// Sizes from untrusted headers (file formats, configs): products that cannot wrap around, and the
// check that what a header promises fits in the bytes actually there, made before anything is
// allocated. The callers raise their own error type, naming their file, with the text these give.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ebm::util {

// a * b, or nothing when the product does not fit in 64 bits.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b);

// The product of `dims` times `item_size`, or nothing when a dimension is negative or the product
// does not fit in 63 bits (so it also fits in int64_t, LibTorch's and NumPy's size type).
std::optional<uint64_t> checked_bytes(const std::vector<int64_t>& dims, uint64_t item_size);

// An error text when `needed` bytes (what a header promises) exceed the `available` ones, else
// nothing: "shape (10, 1000000) needs 10000000 bytes, the file holds 80 after its header".
std::optional<std::string> exceeds_available(uint64_t needed, uint64_t available,
                                             const std::string& what);

}  // namespace ebm::util
