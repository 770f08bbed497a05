// The one unit that includes LibTorch's ProcessGroupNCCL.hpp. Unlike the Gloo shim, code compiled
// here does depend on a definition from outside the wheel: ProcessGroupNCCL::Options (allocated
// by its inline create()) holds an ncclConfig_t by value. So this unit is compiled against the
// nccl.h of the NCCL wheel that torch itself pins (nvidia-nccl-cu13, the version torch was built
// with), never another NCCL. Without that wheel (a CPU-only LibTorch) there is no NCCL backend.
#include "ebm/dist/backends.h"

#ifdef EBM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <stdexcept>

namespace ebm::dist {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    int cuda_index) {
#ifdef EBM_WITH_NCCL
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(cuda_index));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
#else
  (void)store, (void)rank, (void)size, (void)timeout, (void)cuda_index;
  throw std::runtime_error(
      "NCCL: this build has no NCCL backend (LibTorch without CUDA, or no nvidia-nccl wheel beside "
      "it)");
#endif
}

}  // namespace ebm::dist
