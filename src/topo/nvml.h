// NVLink facts from NVML, loaded with dlopen("libnvidia-ml.so.1") so Trellis needs no NVIDIA
// library at build or run time. Per GPU: active links grouped by remote PCI device (GPU or
// NVSwitch), the NVLink version and the compute capability.
#pragma once

#include "topo/model.h"

namespace trellis::topo {

/// Adds NVML facts to the GPUs of `s` (found by sysfs). Without NVML (no driver, no GPU, a
/// replayed tree) it logs once at info level and marks each GPU's NVLink facts unknown (degraded
/// with a note) instead of pretending the GPU has no NVLink. `library` "" means libnvidia-ml.so.1.
Status addNvmlFacts(System& s, const std::string& library = "");

}  // namespace trellis::topo
