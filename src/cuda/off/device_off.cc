// cuda/device.h and the launcher in a build without CUDA (TRELLIS_WITH_CUDA=OFF, or no toolkit
// found at configure time): every pointer is host memory and whatever needs the GPU says why not.
#include "cuda/device.h"
#include "cuda/reduce_launch.h"

namespace trellis::cuda {

namespace {
Status notBuilt() {
  return invalidUsage("this build of Trellis has no CUDA support (configured with TRELLIS_WITH_CUDA=OFF, or no "
                      "CUDA toolkit was found at build time)");
}
}  // namespace

bool builtWithCuda() { return false; }
Status driverStatus() { return notBuilt(); }
bool mayHaveCudaMemory() { return false; }
Result<PointerInfo> pointerInfo(const void*) { return PointerInfo{}; }
Status streamSynchronize(void*) { return notBuilt(); }
Result<int> deviceCount() { return notBuilt(); }

Status launchReduce(const DeviceReduce& r, void*) {
  TRELLIS_TRY(checkReduce(r));
  if (r.count == 0) return Status::ok();
  return notBuilt();
}

}  // namespace trellis::cuda
