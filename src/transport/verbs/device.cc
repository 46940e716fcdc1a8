#include "transport/verbs/device.h"

#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <net/if.h>
#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "topo/paths.h"

namespace trellis::transport::verbs {

std::string gidToString(const uint8_t gid[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(AF_INET6, gid, buf, sizeof buf) == nullptr) return "?";
  return buf;
}

int mtuBytes(int m) { return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128 << m : 0; }

std::string PortInfo::describe() const {
  std::string s = dev + ":" + std::to_string(port);
  if (infiniband) return s + formatString(" (InfiniBand, LID %u, MTU %d)", lid, mtuBytes(mtu));
  return s + formatString(" (%s, GID[%d] %s%s%s, MTU %d)", gidType.c_str(), gidIndex,
                          gidToString(gid).c_str(), netdev.empty() ? "" : " on ", netdev.c_str(),
                          mtuBytes(mtu));
}

static bool isV4Mapped(const uint8_t g[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(g, prefix, 12) == 0;
}
static bool isLinkLocal(const uint8_t g[16]) { return g[0] == 0xfe && (g[1] & 0xc0) == 0x80; }

static std::string pciAddressOf(const std::string& dev) {
  std::error_code ec;
  auto p = std::filesystem::canonical("/sys/class/infiniband/" + dev + "/device", ec);
  if (ec) return "";
  std::string name = p.filename().string();
  // dddd:bb:dd.f
  if (name.size() == 12 && name[4] == ':' && name[7] == ':' && name[10] == '.') return name;
  return "";
}

// Picks the GID of a RoCE port: the forced index, else the IPv4-mapped RoCE v2 entry, else any
// other RoCE v2 entry (global before link-local), else RoCE v1. Returns false with a note if none.
static bool pickGid(ibv_context* ctx, int port, int tableLen, int forced, PortInfo* out,
                    std::string* note) {
  int best = -1, bestScore = -1;
  ibv_gid_entry bestEntry{};
  for (int i = 0; i < tableLen; ++i) {
    if (forced >= 0 && i != forced) continue;
    ibv_gid_entry e{};
    if (ibv_query_gid_ex(ctx, port, i, &e, 0) != 0) continue;  // empty slot
    static const uint8_t zero[16] = {};
    if (std::memcmp(e.gid.raw, zero, 16) == 0) continue;
    int score = 0;
    if (e.gid_type == IBV_GID_TYPE_ROCE_V2)
      score = isV4Mapped(e.gid.raw) ? 4 : isLinkLocal(e.gid.raw) ? 2 : 3;
    else if (e.gid_type == IBV_GID_TYPE_ROCE_V1)
      score = 1;
    if (forced >= 0) score = 5;
    if (score > bestScore) {
      best = i;
      bestScore = score;
      bestEntry = e;
    }
  }
  if (best < 0) {
    *note =
        forced >= 0
            ? formatString("TRELLIS_IB_GID_INDEX=%d is not a valid GID table entry (table has %d)",
                           forced, tableLen)
            : std::string("no GID configured (is an IP address assigned to its interface?)");
    return false;
  }
  out->gidIndex = best;
  std::memcpy(out->gid, bestEntry.gid.raw, 16);
  out->gidType = bestEntry.gid_type == IBV_GID_TYPE_ROCE_V2   ? "RoCE v2"
                 : bestEntry.gid_type == IBV_GID_TYPE_ROCE_V1 ? "RoCE v1"
                                                              : "IB";
  char ifname[IF_NAMESIZE] = {};
  if (bestEntry.ndev_ifindex != 0 && if_indextoname(bestEntry.ndev_ifindex, ifname) != nullptr)
    out->netdev = ifname;
  return true;
}

std::vector<PortInfo> listActivePorts(int gidIndex, std::vector<std::string>* notes) {
  std::vector<PortInfo> out;
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (list == nullptr) {
    if (notes) notes->push_back(formatString("ibv_get_device_list: %s", strerror(errno)));
    return out;
  }
  for (int d = 0; d < n; ++d) {
    const char* name = ibv_get_device_name(list[d]);
    ibv_context* ctx = ibv_open_device(list[d]);
    if (ctx == nullptr) {
      if (notes) notes->push_back(formatString("%s: ibv_open_device: %s", name, strerror(errno)));
      continue;
    }
    ibv_device_attr attr{};
    if (ibv_query_device(ctx, &attr) != 0) {
      if (notes) notes->push_back(formatString("%s: ibv_query_device failed", name));
      ibv_close_device(ctx);
      continue;
    }
    for (int p = 1; p <= attr.phys_port_cnt; ++p) {
      ibv_port_attr pa{};
      if (ibv_query_port(ctx, p, &pa) != 0) continue;
      if (pa.state != IBV_PORT_ACTIVE) {
        if (notes)
          notes->push_back(
              formatString("%s:%d: port is %s, not active", name, p, ibv_port_state_str(pa.state)));
        continue;
      }
      PortInfo info;
      info.dev = name;
      info.port = p;
      info.mtu = pa.active_mtu;
      info.busId = pciAddressOf(name);
      info.infiniband = pa.link_layer == IBV_LINK_LAYER_INFINIBAND;
      if (info.infiniband) {
        info.lid = pa.lid;
        info.gidIndex = gidIndex >= 0 ? gidIndex : 0;
        ibv_gid g{};
        if (ibv_query_gid(ctx, p, info.gidIndex, &g) == 0) std::memcpy(info.gid, g.raw, 16);
        info.gidType = "IB";
      } else {
        std::string note;
        if (!pickGid(ctx, p, pa.gid_tbl_len, gidIndex, &info, &note)) {
          if (notes) notes->push_back(formatString("%s:%d: %s", name, p, note.c_str()));
          continue;
        }
      }
      out.push_back(info);
    }
    ibv_close_device(ctx);
  }
  ibv_free_device_list(list);
  return out;
}

int findNicNode(const topo::System& sys, const PortInfo& p) {
  for (int id : sys.ofKind(topo::NodeKind::kNic)) {
    const topo::Node& n = sys.nodes[id];
    if (!p.busId.empty() && n.busId == p.busId) return id;
    for (const topo::NetPort& np : n.ports)
      if (np.name == p.dev) return id;
  }
  return -1;
}

std::vector<int> chooseNics(const std::vector<PortInfo>& ports, const HcaFilter& filter,
                            const topo::System* sys, int fromNode, size_t maxNics, std::string* why,
                            const std::vector<std::string>& prefer) {
  std::vector<int> cand;
  for (size_t i = 0; i < ports.size(); ++i)
    if (filter.allows(ports[i].dev, ports[i].port)) cand.push_back(static_cast<int>(i));
  auto byName = [&](int a, int b) {
    return ports[a].dev != ports[b].dev ? ports[a].dev < ports[b].dev
                                        : ports[a].port < ports[b].port;
  };
  std::string how;
  if (!filter.empty() && !filter.exclude) {
    std::stable_sort(cand.begin(), cand.end(), [&](int a, int b) {
      size_t ra = filter.rank(ports[a].dev, ports[a].port),
             rb = filter.rank(ports[b].dev, ports[b].port);
      return ra != rb ? ra < rb : byName(a, b);
    });
    how = "TRELLIS_IB_HCA";
  } else if (std::any_of(cand.begin(), cand.end(), [&](int i) {
               return std::find(prefer.begin(), prefer.end(), ports[i].dev) != prefer.end() ||
                      (!ports[i].netdev.empty() &&
                       std::find(prefer.begin(), prefer.end(), ports[i].netdev) != prefer.end());
             })) {
    auto pos = [&](int i) {
      auto d = std::find(prefer.begin(), prefer.end(), ports[i].dev);
      if (d == prefer.end() && !ports[i].netdev.empty())
        d = std::find(prefer.begin(), prefer.end(), ports[i].netdev);
      return static_cast<size_t>(d - prefer.begin());
    };
    std::vector<int> keep;
    for (int i : cand)
      if (pos(i) < prefer.size()) keep.push_back(i);
    std::stable_sort(keep.begin(), keep.end(), [&](int a, int b) { return pos(a) < pos(b); });
    cand = keep;
    how = "this rank's rails";
  } else if (sys != nullptr && fromNode >= 0 && fromNode < static_cast<int>(sys->nodes.size())) {
    const int unknown = static_cast<int>(topo::PathKind::kNet) + 1;
    std::vector<int> kind(ports.size(), unknown);
    for (int i : cand) {
      int nic = findNicNode(*sys, ports[i]);
      if (nic >= 0) kind[i] = static_cast<int>(topo::pathBetween(*sys, fromNode, nic).kind);
    }
    int best = INT_MAX;
    for (int i : cand) best = std::min(best, kind[i]);
    std::vector<int> keep;
    for (int i : cand)
      if (kind[i] == best) keep.push_back(i);
    std::sort(keep.begin(), keep.end(), byName);
    how = best == unknown ? "no port in the topology: all allowed ports"
                          : formatString("nearest to topology node %d (path %s)", fromNode,
                                         topo::pathKindName(static_cast<topo::PathKind>(best)));
    cand = keep;
  } else {
    std::sort(cand.begin(), cand.end(), byName);
    how = "no topology: all allowed ports";
  }
  if (cand.size() > maxNics) cand.resize(maxNics);
  if (why) *why = how;
  return cand;
}

int rankTopoNode(const topo::System& sys) {
  unsigned cpu = 0, node = 0;
  if (getcpu(&cpu, &node) != 0) return -1;
  int first = -1;
  for (int id : sys.ofKind(topo::NodeKind::kCpu)) {
    if (sys.nodes[id].numa == static_cast<int>(node)) return id;
    if (first < 0) first = id;
  }
  return first;
}

}  // namespace trellis::transport::verbs
