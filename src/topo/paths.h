// Paths between devices (NCCL's path kinds: LOC, NVL, NVS(witch), PIX, PXB, PHB, NODE, SYS) with
// their bottleneck bandwidth; nearest NICs of a device; rails (which NIC serves which GPU).
#pragma once

#include <string>
#include <vector>

#include "topo/model.h"

namespace trellis::topo {

enum class PathKind { kLoc, kNvLink, kNvSwitch, kPix, kPxb, kPhb, kNode, kSys, kNet };
/// "LOC", "NVL", "NVS", "PIX", "PXB", "PHB", "NODE", "SYS", "NET" (nvidia-smi topo -m's words).
const char* pathKindName(PathKind k);

struct Path {
  PathKind kind = PathKind::kSys;
  double gbps = 0;  // bottleneck GB/s per direction; 0 when unknown
  int nvlinks = 0;  // NVL/NVS paths: the NVLinks in the bottleneck bundle (nvidia-smi's NV#)
};

/// Constants with their origin (GB/s per direction).
struct LinkRates {
  double nvlinkPerLink = 25.0;   // NVLink 3/4: 25 GB/s per link per direction (A100, H100 data sheets)
  double smp = 40.0;             // inter-socket (UPI/xGMI) order of magnitude: a conservative default
};

Path pathBetween(const System& s, int a, int b, const LinkRates& rates = {});

/// NICs ordered from nearest to farthest for device `dev` (ties keep bus-id order).
std::vector<int> nearestNics(const System& s, int dev);

/// Rails: for each GPU, the NIC it uses; NICs that serve no GPU (storage / front-end) are not
/// compute NICs. Without GPUs every NIC is a compute NIC.
struct Rails {
  std::vector<int> gpuNic;       // per GPU (in ofKind(kGpu) order): NIC node id or -1
  std::vector<int> computeNics;  // rail r is computeNics[r]
  int railOfNic(int nic) const;
};
Rails computeRails(const System& s);

}  // namespace trellis::topo
