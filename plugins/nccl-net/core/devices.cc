#include "core/devices.h"

#include <algorithm>
#include <optional>

#include "core/params.h"
#include "core/topo_view.h"

namespace trellis::ncclnet {

static Param<int64_t> kMaxRecvs(
    "TRELLIS_NCCL_NET_MAX_RECVS", 8,
    "buffers one NCCL receive may group (maxRecvs, 1..8; both peers must "
    "agree)");
static Param<double> kConnectTimeout("TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S", 60.0,
                                     "seconds a connect keeps retrying before it fails");
static Param<int64_t> kDefaultSpeed(
    "TRELLIS_NCCL_NET_DEFAULT_SPEED_MBPS", 10000,
    "speed reported for an interface whose speed is unknown (virtio, "
    "veth)");

CommonParams commonParams() {
  CommonParams p;
  p.maxRecvs = static_cast<int>(std::clamp<int64_t>(kMaxRecvs.get(), 1, 8));
  p.connectTimeoutS = std::max(1.0, kConnectTimeout.get());
  return p;
}

int defaultSpeedMbps() {
  return static_cast<int>(std::clamp<int64_t>(kDefaultSpeed.get(), 1, 1 << 30));
}

Result<std::vector<NetdevDevice>> netdevDevices() {
  TRELLIS_ASSIGN_OR_RETURN(std::vector<net::Interface> ifs, net::findInterfaces());
  std::vector<NetdevDevice> out;
  const TopoView& topo = TopoView::get();
  for (const net::Interface& i : ifs) {
    bool seen = false;
    for (const NetdevDevice& d : out) seen = seen || d.dev.name == i.name;
    if (seen) continue;  // an interface with IPv4 and IPv6 addresses: the first (IPv4) wins
    PhysDevice d;
    d.name = i.name;
    std::optional<NicFacts> f = topo.forNetdev(i.name);
    if (f) {
      d.pciPath = f->pciPath;
      d.guid = f->guid;
      d.port = f->port;
      d.railGroup = f->railGroup;
      d.speedKnown = f->speedMbps > 0;
      d.speedMbps = d.speedKnown ? static_cast<int>(f->speedMbps) : defaultSpeedMbps();
    } else {
      d.guid = fnv1a64("netdev:" + i.name);
      d.speedMbps = defaultSpeedMbps();
    }
    std::string ip = i.addr.toString();
    ip = ip.substr(0, ip.rfind(':'));  // the interface address has no port yet
    d.describe = formatString("%s (%s, %s, %d Mbps%s)", i.name.c_str(), ip.c_str(),
                              f && !f->busId.empty() ? f->busId.c_str() : "virtual", d.speedMbps,
                              d.speedKnown ? "" : " assumed: speed unknown");
    out.push_back({d, i.addr});
  }
  return out;
}

}  // namespace trellis::ncclnet
