// The collective correctness cases of tests/collectives (cases.h) on device buffers: the same inputs
// and double-precision references, the buffers in device memory, every call on a CUDA stream.
#pragma once

#include <string>

#include "../collectives/cases.h"
#include "cuda/driver.h"

namespace trellis::test {

/// Runs `c` with device buffers on `stream` and checks the result after synchronising; "" on
/// success. Output buffers start filled with 0x55 so that a write outside the result is caught.
std::string runDeviceCase(trellisComm_t comm, int rank, int nranks, const Case& c, CUstream stream);

}  // namespace trellis::test
