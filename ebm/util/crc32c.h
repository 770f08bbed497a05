// CRC32C (Castagnoli), as used by TFRecord/TensorBoard framing and the trajectory records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ebm::util {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
inline uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace ebm::util
