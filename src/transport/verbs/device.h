// RDMA devices and ports: which are usable (active ports only), each port's address (LID for
// InfiniBand, the GID for RoCE: the IPv4-mapped RoCE v2 entry unless TRELLIS_IB_GID_INDEX says
// otherwise), and which of them a rank uses (TRELLIS_IB_HCA, else the nearest in the topology).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "topo/model.h"
#include "transport/verbs/hca_filter.h"

namespace trellis::transport::verbs {

/// One active port of an RDMA device, with the address a peer needs to reach it.
struct PortInfo {
  std::string dev;  // "mlx5_0", "rxe0"
  int port = 1;
  bool infiniband = false;  // link layer InfiniBand (LID routed); else Ethernet (RoCE, GID routed)
  uint16_t lid = 0;
  int gidIndex = -1;
  uint8_t gid[16] = {};
  std::string gidType;  // "RoCE v2", "RoCE v1", "IB"
  int mtu = 0;          // enum ibv_mtu of the port's active MTU
  std::string netdev;   // RoCE: the interface of the chosen GID
  std::string busId;    // PCI address of the device ("" for software devices such as rxe)
  /// "rxe0:1 (RoCE v2, GID[1] ::ffff:10.77.1.1 on dummy0, MTU 4096)".
  std::string describe() const;
};

/// "::ffff:10.77.1.1", "fe80::5c34:efff:fe63:88ab".
std::string gidToString(const uint8_t gid[16]);
/// Bytes of enum ibv_mtu (1 -> 256 ... 5 -> 4096).
int mtuBytes(int ibvMtu);

/// Every active port of every RDMA device on this machine. `gidIndex` >= 0 forces that GID table
/// entry on RoCE ports (TRELLIS_IB_GID_INDEX). Ports that are down, or RoCE ports without a usable
/// GID, are left out with a line in `notes`. No device at all is not an error: the list is empty.
std::vector<PortInfo> listActivePorts(int gidIndex, std::vector<std::string>* notes);

/// The ports one rank uses, as indices into `ports`, at most `maxNics`:
///  - an inclusive TRELLIS_IB_HCA list: the ports it names, in its order;
///  - else the allowed ports whose device or interface is named in `prefer` (the rank's rails as
///    the communicator's cluster view assigned them), in that order, when any is;
///  - otherwise the ports the filter allows that are nearest to `fromNode` in `sys` (the rank's GPU
///    or NUMA node; every port at the best path kind, so two NICs behind one switch are striped);
///    ports the topology does not know (software devices) count as farthest;
///  - without a topology (`sys` null or `fromNode` < 0): every allowed port, by name.
/// `why` (optional) says how the choice was made, for the log.
std::vector<int> chooseNics(const std::vector<PortInfo>& ports, const HcaFilter& filter,
                            const topo::System* sys, int fromNode, size_t maxNics, std::string* why,
                            const std::vector<std::string>& prefer = {});

/// The NIC node of `sys` for port `p` (by PCI address, else by device name among the NIC's ports);
/// -1 when the topology does not know it (software devices such as rxe).
int findNicNode(const topo::System& sys, const PortInfo& p);

/// The topology node a rank measures NIC distance from: the CPU node of the NUMA node it runs on
/// (-1 when unknown).
int rankTopoNode(const topo::System& sys);

}  // namespace trellis::transport::verbs
