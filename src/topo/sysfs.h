// Local detection from Linux sysfs: NUMA nodes, the PCI tree down to every GPU, NIC and NVSwitch
// (with link speed/width and NUMA), network interfaces and RDMA ports. `root` replays a saved or
// synthetic tree (TRELLIS_SYSFS_ROOT / --sysfs-root); "" reads this machine.
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

Result<System> detectFromSysfs(const std::string& root);
/// detectFromSysfs(TRELLIS_SYSFS_ROOT or ""), or the file named by TRELLIS_TOPO_FILE.
Result<System> detectLocalSystem();
/// Loads a topology file: Trellis JSON, NCCL XML or hwloc XML, told apart by content.
Result<System> loadTopologyFile(const std::string& path);

}  // namespace trellis::topo
