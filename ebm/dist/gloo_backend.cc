// The one unit that includes LibTorch's ProcessGroupGloo.hpp. That header needs Gloo's headers to
// parse, and the torch wheel ships none; Debian's libgloo-dev (a 2022 snapshot, older than the
// Gloo inside libtorch_cpu.so) provides them. That is sound because nothing compiled here from
// Gloo's headers runs: ProcessGroupGloo holds Gloo objects only behind shared_ptr (its size does
// not depend on Gloo's definitions), and this unit calls only functions defined inside
// libtorch_cpu.so (Options::create_default and the constructor); every collective runs there,
// through the c10d::Backend vtable. The test Dist.GlooShimDefinesNoGlooCode checks the object file:
// it must define no symbol of namespace gloo (no inline Gloo code, no vtable of GlooStore).
#include <chrono>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "ebm/dist/backends.h"

namespace ebm::dist {

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace ebm::dist
