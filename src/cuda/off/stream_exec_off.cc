// The stream executor in a build without CUDA: creating one says why it cannot exist.
#include "cuda/device.h"
#include "cuda/stream_exec.h"

namespace trellis::cuda {

Result<std::unique_ptr<StreamExecutor>> StreamExecutor::create(const StreamExecutorOptions&,
                                                                std::function<void(const Status&)>) {
  return driverStatus();
}

}  // namespace trellis::cuda
