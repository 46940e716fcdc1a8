// `trellis-topo show`: a one-screen summary (CPUs, NUMA, NICs/netdevs, PCIe devices), the tree, and
// an nvidia-smi-topo-style matrix of GPUs and NICs with the GPU -> NIC rails.
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

/// `inventoryRoot`: when non-null, also list this sysfs root's PCI functions and interfaces.
void showSystem(const System& s, const std::string* inventoryRoot);

}  // namespace trellis::topo
