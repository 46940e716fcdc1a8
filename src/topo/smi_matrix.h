// `nvidia-smi topo -m` text as an input (a cross-check, not a source of truth: it has no bus ids,
// and NVSwitch machines show NV# like direct links). The matrix becomes a model whose PCIe tree
// reproduces every PIX/PXB/PHB/NODE/SYS cell: PIX groups share a switch, PXB groups an upper
// switch, PHB groups a host bridge, and CPUs come from the NUMA Affinity column.
#pragma once

#include <string>
#include <vector>

#include "topo/model.h"

namespace trellis::topo {

/// True when `text` looks like nvidia-smi topo -m output (a header row starting with GPU0).
bool looksLikeSmiMatrix(const std::string& text);
/// Parses the matrix. Errors name `origin` and the line.
Result<System> fromSmiMatrix(const std::string& text, const std::string& origin);
/// "ff,ffffffff" (NCCL/sysfs hex mask) from a CPU list such as "0-51,104-155"; "" if unparsable.
std::string maskFromCpuList(const std::string& list);

}  // namespace trellis::topo
