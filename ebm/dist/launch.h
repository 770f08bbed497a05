// The launcher's description of a data-parallel run: torchrun (and Slurm scripts that start it)
// give every process RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
#pragma once

#include <optional>
#include <string>

namespace ebm::dist {

struct LaunchEnv {
  int rank = 0;
  int local_rank = 0;  // index on this node: the process's GPU
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun's agent already serves the rendezvous store on MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every process joins it as a client. Otherwise rank 0
  // serves it.
  bool agent_store = false;

  // The environment's description, or nullopt when WORLD_SIZE is unset or 1 (one process: nothing
  // changes). Throws std::invalid_argument naming the variable when one is missing or malformed.
  static std::optional<LaunchEnv> from_environment();
};

// True in a process that a launcher started as rank > 0: commands that run on rank 0 alone
// (ebm eval, ebm sample, ebm traj eval) return at once there.
bool is_secondary_rank();

// Seed of process `rank` for a run seeded `seed`: rank 0 keeps `seed` (so a one-process run is
// unchanged), the others get independent streams.
unsigned long long rank_seed(unsigned long long seed, int rank);

}  // namespace ebm::dist
