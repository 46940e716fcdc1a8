// Comparing two topologies (another node of the same type, a vendor file against detection, or
// nvidia-smi topo -m against either): device counts, devices present in only one, changed facts,
// and the GPU/NIC path matrix compared by ordinal (GPUi, NICk) since bus ids may be made up.
#pragma once

#include <string>
#include <vector>

#include "topo/model.h"

namespace trellis::topo {

/// One human-readable line per difference; empty when the topologies agree.
std::vector<std::string> diffSystems(const System& a, const System& b);
/// Graphviz: the PCIe tree plus NVLink edges (labelled NV#).
std::string toDot(const System& s);

}  // namespace trellis::topo
