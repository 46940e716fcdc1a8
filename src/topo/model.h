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
/// Edge kinds: PCIe (gen x width), NVLink (version x count), C2C (Grace-Hopper chip-to-chip),
/// SMP (inter-socket UPI/xGMI), Network (a NIC port to its fabric).
enum class LinkKind { kPcie, kNvLink, kC2C, kSmp, kNetwork };
const char* nodeKindName(NodeKind k);
const char* sourceName(Source s);
const char* linkKindName(LinkKind k);

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
  double linkGBps = 0;    // upstream bandwidth when only that is known (hwloc XML); 0: use speed x width
  // CPU / NUMA
  int numa = -1;  // every node carries the NUMA node of its CPU
  std::string affinity, arch, cpuVendor;
  int family = -1, model = -1;
  int cores = 0, pus = 0;  // physical cores and hardware threads of this NUMA node (hwloc), 0 unknown
  std::string cpuModel;
  // GPU
  int gpuDev = -1, sm = -1;
  // NIC
  std::vector<NetPort> ports;
};

/// An NVLink (or C2C) bundle from a GPU to a GPU, an NVSwitch or a CPU.
struct NvLink {
  int from = -1;          // GPU node
  std::string target;     // peer bus id ("" when the peer is a CPU)
  int to = -1;            // resolved node (GPU, NvSwitch or CPU), -1 if not in the model
  int count = 0;
  uint32_t targetClass = 0;
  LinkKind kind = LinkKind::kNvLink;  // kNvLink or kC2C
  int version = 0;                    // NVLink version (1..6), 0 unknown
  double gbpsPerLink = 0;             // per link per direction, 0 unknown (LinkRates default)
  Source source = Source::kFile;
};

/// One edge of the graph as every source sees it (derived, see links()).
struct Link {
  int from = -1, to = -1;  // node ids; `to` is -1 for a network port (the fabric is not modelled here)
  LinkKind kind = LinkKind::kPcie;
  Source source = Source::kFile;
  int gen = 0, width = 0;     // PCIe generation and lanes (0 unknown)
  int version = 0, count = 0; // NVLink version and link count
  double gbps = 0;            // per direction, 0 unknown
  bool degraded = false;      // an estimate or a fact some source could not confirm
  std::string port;           // network: the port/interface name
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

/// Every edge: PCIe child->parent, NVLink/C2C bundles, SMP between CPU roots (an estimate,
/// marked degraded) and NIC ports to the network.
std::vector<Link> links(const System& s);
/// PCIe generation from a link speed string ("16.0 GT/s PCIe" -> 4), 0 unknown.
int pcieGen(const std::string& speed);
/// Upstream bandwidth of a node in GB/s per direction (linkGBps, else speed x width), 0 unknown.
double upstreamGBps(const Node& n);

/// NVLink version of a GPU generation (sm 60 -> 1, 70 -> 2, 80 -> 3, 90 -> 4, 100 -> 5), 0 unknown.
int nvlinkVersionOfSm(int sm);
/// Per-link, per-direction GB/s of an NVLink version (NVIDIA data sheets: 20, 25, 25, 25, 50), 0 unknown.
double nvlinkGBpsPerLink(int version);

/// Upstream PCIe link bandwidth of a node in GB/s per direction (0: unknown); `speed` like
/// "16.0 GT/s PCIe", "8 GT/s", "32 GT/s PCIe/s".
double pcieGBps(const std::string& speed, int width);

/// Trellis JSON (versioned) and back.
std::string toJson(const System& s);
Result<System> fromJson(const std::string& text, const std::string& origin);

}  // namespace trellis::topo
