// The train / validation split of a recording, by start state: one fixed hash, so that every tool
// (the window datasets, the recorder's longer held-out episodes, the evaluation) agrees on it.
// Header-only and free of LibTorch, for the rollout driver.
#pragma once

#include <cstdint>

namespace ebm::trajectory {

// True when start state s belongs to the validation split for this fraction.
inline bool is_validation_state(uint32_t start_state, double val_fraction) {
  uint64_t z = start_state + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ull << 53) < val_fraction;
}

}  // namespace ebm::trajectory
