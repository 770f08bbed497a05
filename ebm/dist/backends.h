// The two c10d backends, each built in its own translation unit: the only units of the project
// that include a c10d backend header (see "Process groups" in ebm/README.md for why that is sound
// against the torch wheel).
#pragma once

#include <chrono>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace ebm::dist {

// LibTorch's ProcessGroupGloo on its default device (GLOO_SOCKET_IFNAME, or the address this
// host's name resolves to, or the loopback).
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout);

// LibTorch's ProcessGroupNCCL on CUDA device `cuda_index` (made the current device); throws
// std::runtime_error when this build has no NCCL backend.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    int cuda_index);

}  // namespace ebm::dist
