// Shared pieces of the NumPy readers (internal to the datasets/image library: included by npz.cc
// and pickle.cc only, never by users of npz.h).
#pragma once

#include <cstdint>
#include <string>

#include "datasets/image/npz.h"

namespace ebm::data::detail {

// Throws DatasetError "where: what".
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw DatasetError(where + ": " + what);
}

// The unsigned little-endian integer in the n bytes at p.
inline uint64_t le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace ebm::data::detail
