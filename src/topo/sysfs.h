// Local detection from Linux sysfs: NUMA nodes, the PCI tree down to every GPU, NIC and NVSwitch
// (with link speed/width and NUMA), network interfaces and RDMA ports. `root` replays a saved or
// synthetic tree (TRELLIS_SYSFS_ROOT / --sysfs-root); "" reads this machine.
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

Result<System> detectFromSysfs(const std::string& root);
/// The file named by TRELLIS_TOPO_FILE, else detectFromSysfs(TRELLIS_SYSFS_ROOT or "") plus, on
/// this machine, CPU facts from hwloc and NVLink facts from NVML (marked unknown without NVML).
Result<System> detectLocalSystem();
/// Loads a topology file: Trellis JSON, NCCL XML, hwloc XML or nvidia-smi topo -m text, told apart
/// by content.
Result<System> loadTopologyFile(const std::string& path);

}  // namespace trellis::topo
