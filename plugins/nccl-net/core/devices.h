// What the backends share: the parameters every backend honours and the list of network
// interfaces as devices (TRELLIS_SOCKET_IFNAME), described from the Trellis topology.
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"
#include "core/socket.h"

namespace trellis::ncclnet {

struct CommonParams {
  int maxRecvs = 8;             ///< TRELLIS_NCCL_NET_MAX_RECVS (1..8)
  double connectTimeoutS = 60;  ///< TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S (>= 1)
};
CommonParams commonParams();

/// A network interface as a device, with the address its comms listen and connect on.
struct NetdevDevice {
  PhysDevice dev;
  net::SockAddr addr;  ///< port 0
};

/// Every interface findInterfaces() accepts, once each (IPv4 address first), with pci path, guid,
/// port, speed (unknown: TRELLIS_NCCL_NET_DEFAULT_SPEED_MBPS) and rail group from the topology.
/// maxComms is left for the backend to fill.
Result<std::vector<NetdevDevice>> netdevDevices();

/// TRELLIS_NCCL_NET_DEFAULT_SPEED_MBPS.
int defaultSpeedMbps();

}  // namespace trellis::ncclnet
