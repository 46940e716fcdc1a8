// hwloc XML (hwloc 2.x and 3.0 files, as lstopo and hwloc's own tests write them): packages/NUMA
// nodes become CPU nodes, PCI bridges and devices the PCI tree, OS devices give NIC and GPU names,
// and the NVLinkBandwidth distance matrix becomes NVLink bundles (to GPUs, NVSwitches or CPUs).
// Read with pugixml rather than libhwloc: the installed hwloc 2.9 cannot import version 3.0 files.
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

/// Parses hwloc XML. Errors name `origin` and the line.
Result<System> fromHwlocXml(const std::string& text, const std::string& origin);
/// "0-3,8" from an hwloc cpuset ("0x00000303,0x03030000,,0x0": 32-bit words, most significant
/// first, an empty word is zero).
std::string cpuListFromHwlocSet(const std::string& set);

}  // namespace trellis::topo
