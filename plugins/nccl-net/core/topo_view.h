// The Trellis topology as the NCCL plugins need it: for a network interface or an RDMA port, the
// NIC it belongs to (sysfs PCI path, guid shared by the ports of one NIC, speed) and its rail group
// (which GPUs it serves); for the tuner, the GPUs, NVLink and NIC bandwidth of this node.
// Detected once per process (topo::detectLocalSystem: TRELLIS_TOPO_FILE / TRELLIS_SYSFS_ROOT
// apply).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "topo/model.h"

namespace trellis::ncclnet {

struct NicFacts {
  std::string busId;    ///< "0000:00:03.0"
  std::string pciPath;  ///< resolved /sys/devices/... path of the PCI function; "" if absent here
  uint64_t guid = 0;    ///< RDMA node guid, else a hash of the PCI device (function stripped)
  int port = 1;
  int64_t speedMbps = 0;  ///< 0: unknown
  std::string railGroup;  ///< "gpus:0,1" (the GPUs this NIC is nearest to) or "nic:0000:00:03"
  std::string linkLayer;  ///< "InfiniBand", "Ethernet", ""
};

class TopoView {
 public:
  /// The process-wide view (detected on first use; an empty system when detection fails, with a
  /// warning).
  static const TopoView& get();
  explicit TopoView(topo::System sys);

  /// Facts for a kernel network interface; nullopt for an interface that is no NIC port in the
  /// topology (loopback, bridges, veth...).
  std::optional<NicFacts> forNetdev(const std::string& ifname) const;
  /// Facts for an RDMA device port ("mlx5_0", 1).
  std::optional<NicFacts> forRdmaPort(const std::string& device, int port) const;
  /// "mlx5_0:1" for every RDMA port the topology knows (InfiniBand or RoCE).
  std::vector<std::string> rdmaPorts() const;
  const topo::System& system() const { return sys_; }

 private:
  NicFacts factsOf(int nic, const topo::NetPort& port) const;
  topo::System sys_;
  std::vector<std::string> railOfNic_;  // by node id
};

/// FNV-1a 64-bit hash (stable guids for NICs without an RDMA node guid).
uint64_t fnv1a64(const std::string& text);

}  // namespace trellis::ncclnet
