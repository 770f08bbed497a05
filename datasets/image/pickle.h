// The restricted unpickler behind RestrictedPickle (npz.h). Internal to the datasets/image library
// (ebm_npz): included by npz.cc and pickle.cc only, never by users of npz.h. It runs the pickle
// machine (protocols 2-5) over bytes in memory and refuses, with its offset, any opcode or global
// outside pickled dicts of NumPy arrays, lists and numbers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "datasets/image/npz.h"

namespace ebm::data::detail {

// Unpickles the `size` bytes at `data`, which must outlive the result (arrays and bytes point
// into them); `path` names the file in error messages. Throws DatasetError.
std::shared_ptr<PickleValue> unpickle(const char* data, size_t size, const std::string& path);

// The Python name of a value kind ("dict", "ndarray", ...) for error messages.
const char* kind_name(PickleValue::Kind k);

}  // namespace ebm::data::detail
