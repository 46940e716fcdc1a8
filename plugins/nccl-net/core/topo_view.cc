#include "core/topo_view.h"

#include <climits>
#include <cstdlib>
#include <map>
#include <set>

#include "core/log.h"
#include "core/params.h"
#include "topo/paths.h"
#include "topo/sysfs.h"

namespace trellis::ncclnet {

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

// "0002:c903:0031:7b70" or "0x0002c90300317b70" -> 0x0002c90300317b70; 0 when there are no digits.
uint64_t parseGuid(const std::string& text) {
  uint64_t v = 0;
  size_t i = (text.rfind("0x", 0) == 0 || text.rfind("0X", 0) == 0) ? 2 : 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d >= 0) v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

// The PCI device of a function ("0000:17:00.1" -> "0000:17:00"): functions of one card are one
// chip.
std::string pciDevice(const std::string& busId) {
  size_t dot = busId.rfind('.');
  return dot == std::string::npos ? busId : busId.substr(0, dot);
}

std::string sysfsRoot() {
  ParamBase* p = findParam("TRELLIS_SYSFS_ROOT");
  return p != nullptr ? p->valueString() : std::string();
}

}  // namespace

TopoView::TopoView(topo::System sys) : sys_(std::move(sys)) {
  railOfNic_.assign(sys_.nodes.size(), "");
  std::vector<int> gpus = sys_.ofKind(topo::NodeKind::kGpu);
  std::map<int, std::set<int>> served;  // nic -> GPUs it is (one of) the nearest to
  for (size_t gi = 0; gi < gpus.size(); ++gi) {
    std::vector<int> order = topo::nearestNics(sys_, gpus[gi]);
    if (order.empty()) continue;
    topo::PathKind best = topo::pathBetween(sys_, gpus[gi], order[0]).kind;
    for (int n : order) {
      if (topo::pathBetween(sys_, gpus[gi], n).kind != best) break;
      served[n].insert(static_cast<int>(gi));
    }
  }
  for (int n : sys_.ofKind(topo::NodeKind::kNic)) {
    auto it = served.find(n);
    if (it != served.end() && !it->second.empty()) {
      std::string key = "gpus:";
      for (int g : it->second) key += (key.size() > 5 ? "," : "") + std::to_string(g);
      railOfNic_[n] = key;
    } else {
      railOfNic_[n] = "nic:" + pciDevice(sys_.nodes[n].busId);
    }
  }
}

const TopoView& TopoView::get() {
  static const TopoView* view = [] {
    Result<topo::System> r = topo::detectLocalSystem();
    if (!r) {
      TRELLIS_WARN(
          kTopo, "topology detection failed (%s): devices are reported without PCI paths or rails",
          r.status().toString().c_str());
      return new TopoView(topo::System{});
    }
    return new TopoView(std::move(r.value()));
  }();
  return *view;
}

NicFacts TopoView::factsOf(int nic, const topo::NetPort& port) const {
  const topo::Node& n = sys_.nodes[nic];
  NicFacts f;
  f.busId = n.busId;
  f.port = port.port;
  f.speedMbps = port.speedMbps;
  f.linkLayer = port.linkLayer;
  f.railGroup = railOfNic_[nic];
  f.guid = parseGuid(port.guid);
  if (f.guid == 0) f.guid = fnv1a64(pciDevice(n.busId));
  if (!n.busId.empty()) {
    std::string path = sysfsRoot() + "/sys/bus/pci/devices/" + n.busId;
    char resolved[PATH_MAX];
    if (realpath(path.c_str(), resolved) != nullptr) f.pciPath = resolved;
  }
  return f;
}

std::optional<NicFacts> TopoView::forNetdev(const std::string& ifname) const {
  for (int nic : sys_.ofKind(topo::NodeKind::kNic))
    for (const topo::NetPort& p : sys_.nodes[nic].ports)
      if (p.netdev == ifname) {
        NicFacts f = factsOf(nic, p);
        // A netdev whose speed the kernel does not report (IPoIB, some RoCE drivers) takes the
        // rate of the RDMA port with the same port number on the same NIC.
        for (const topo::NetPort& q : sys_.nodes[nic].ports)
          if (q.netdev.empty() && !q.guid.empty() && q.port == p.port) {
            if (f.speedMbps == 0) f.speedMbps = q.speedMbps;
          }
        return f;
      }
  return std::nullopt;
}

std::optional<NicFacts> TopoView::forRdmaPort(const std::string& device, int port) const {
  for (int nic : sys_.ofKind(topo::NodeKind::kNic))
    for (const topo::NetPort& p : sys_.nodes[nic].ports)
      if (p.name == device && p.port == port && !p.guid.empty()) return factsOf(nic, p);
  return std::nullopt;
}

std::vector<std::string> TopoView::rdmaPorts() const {
  std::vector<std::string> out;
  for (int nic : sys_.ofKind(topo::NodeKind::kNic))
    for (const topo::NetPort& p : sys_.nodes[nic].ports)
      if (p.netdev.empty() && !p.guid.empty()) out.push_back(p.name + ":" + std::to_string(p.port));
  return out;
}

}  // namespace trellis::ncclnet
