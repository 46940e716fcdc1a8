// CPU facts of this machine from libhwloc (cores, hardware threads and CPU model per NUMA node),
// added to the CPU nodes sysfs found. I/O discovery stays with the sysfs walk: it is faster and
// replayable.
#pragma once

#include "topo/model.h"

namespace trellis::topo {

/// Fills cores, pus and cpuModel of each CPU node whose NUMA id hwloc knows; a failure of hwloc
/// is logged and leaves the nodes as they are.
Status addHwlocCpuFacts(System& s);

}  // namespace trellis::topo
