// NCCL topology XML (NCCL_TOPO_FILE / NCCL_TOPO_DUMP_FILE, <system version="1">): partial and full
// dumps in, NCCL-readable files out.
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

/// Parses NCCL topology XML. Errors name `origin` and the line.
Result<System> fromNcclXml(const std::string& text, const std::string& origin);
/// Writes a file NCCL can load with NCCL_TOPO_FILE.
std::string toNcclXml(const System& s);

}  // namespace trellis::topo
