// The topology model: a tree of CPUs (NUMA nodes), PCIe switches/bridges and PCI devices (GPUs,
// NICs, NVSwitches, others), plus NVLink edges. Pure data, serialisable; every node records where
// its facts came from and whether some are unknown/degraded rather than silently dropping them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace trellis::topo {

enum class NodeKind { kCpu, kPciSwitch, kGpu, kNic, kNvSwitch, kPciDevice };
enum class Source { kSysfs, kNvml, kHwloc, kFile, kIbnetdiscover, kOverride };
const char* nodeKindName(NodeKind k);
const char* sourceName(Source s);

/// One port of a NIC (an RDMA port or a network interface).
struct NetPort {
  std::string name;       // "mlx5_0" / "eth0"
  int dev = -1;           // index as NCCL numbers nets
  int port = 1;
  int64_t speedMbps = 0;  // 0: unknown
  std::string guid;
  std::string linkLayer;  // "InfiniBand", "Ethernet", "" unknown
  std::string netdev;     // kernel interface for RoCE/Ethernet
  std::string state;      // "ACTIVE", "up", ...
};

struct Node {
  int id = -1;
  NodeKind kind = NodeKind::kPciDevice;
  int parent = -1;
  std::vector<int> children;
  Source source = Source::kFile;
  bool degraded = false;  // some facts unknown (see note)
  std::string note;
  // PCI
  std::string busId;  // "0000:10:1c.0"
  uint32_t pciClass = 0;
  uint32_t vendor = 0, device = 0;
  std::string linkSpeed;  // as reported ("16.0 GT/s PCIe")
  int linkWidth = 0;
  // CPU / NUMA
  int numa = -1;  // every node carries the NUMA node of its CPU
  std::string affinity, arch, cpuVendor;
  int family = -1, model = -1;
  // GPU
  int gpuDev = -1, sm = -1;
  // NIC
  std::vector<NetPort> ports;
};

struct NvLink {
  int from = -1;          // GPU node
  std::string target;     // peer bus id
  int to = -1;            // resolved node (GPU or NvSwitch), -1 if not in the model
  int count = 0;
  uint32_t targetClass = 0;
};

struct System {
  std::string hostname;
  Source source = Source::kFile;
  std::vector<Node> nodes;
  std::vector<NvLink> nvlinks;

  int add(Node n);  // returns the id; links it under n.parent
  std::vector<int> ofKind(NodeKind k) const;
  int findBusId(const std::string& busId) const;
  /// Resolves nvlink targets to nodes, creating NVSwitch nodes for targets that are not in the tree.
  void resolveNvLinks();
};

/// Upstream PCIe link bandwidth of a node in GB/s per direction (0: unknown); `speed` like
/// "16.0 GT/s PCIe", "8 GT/s", "32 GT/s PCIe/s".
double pcieGBps(const std::string& speed, int width);

/// Trellis JSON (versioned) and back.
std::string toJson(const System& s);
Result<System> fromJson(const std::string& text, const std::string& origin);

}  // namespace trellis::topo
