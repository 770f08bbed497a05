#include "ebm/dist/launch.h"

#include <cstdlib>
#include <stdexcept>

namespace ebm::dist {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// The integer in environment variable `name` (which must be set), in [min, max].
int env_int(const char* name, int min, int max) {
  const char* v = env(name);
  if (!v) throw std::invalid_argument(std::string(name) + " is not set (WORLD_SIZE > 1 needs it)");
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < min || x > max)
    throw std::invalid_argument(std::string(name) + "='" + v + "' is not an integer in [" +
                                std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int>(x);
}

}  // namespace

std::optional<LaunchEnv> LaunchEnv::from_environment() {
  if (!env("WORLD_SIZE")) return std::nullopt;
  LaunchEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
  if (e.world_size == 1) return std::nullopt;
  e.rank = env_int("RANK", 0, e.world_size - 1);
  e.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", 0, e.world_size - 1) : 0;
  if (const char* addr = env("MASTER_ADDR")) e.master_addr = addr;
  e.master_port = env_int("MASTER_PORT", 1, 65535);
  const char* agent = env("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent && std::string(agent) == "True";
  return e;
}

bool is_secondary_rank() {
  const auto e = LaunchEnv::from_environment();
  return e && e->rank != 0;
}

unsigned long long rank_seed(unsigned long long seed, int rank) {
  if (rank == 0) return seed;
  // splitmix64 of (seed, rank)
  unsigned long long z = seed + 0x9e3779b97f4a7c15ull * static_cast<unsigned long long>(rank + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace ebm::dist
