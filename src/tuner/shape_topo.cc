#include "tuner/shape_topo.h"

#include <algorithm>
#include <fstream>
#include <map>

#include "core/params.h"
#include "topo/paths.h"
#include "topo/sysfs.h"

namespace trellis::tuner {

Shape shapeFromCluster(const topo::ClusterView& v, const std::vector<int>& coresOfRank, bool intraTcp, bool direct,
                       const Constants& c) {
  std::vector<uint64_t> hosts;
  for (const topo::RankPlace& p : v.ranks) hosts.push_back(v.nodes[p.node].hostId);
  Shape s = shapeFromHosts(hosts, coresOfRank, intraTcp, direct, c);
  // shapeFromHosts numbers nodes by first rank, as the view does: keep the view's numbering.
  int rails = 1;
  for (const topo::ClusterNode& n : v.nodes) rails = std::max(rails, static_cast<int>(n.topo.nics.size()));
  s.railsPerNode = rails;
  std::map<std::string, int> groups;
  bool anyGroup = false;
  for (const topo::ClusterNode& n : v.nodes) anyGroup |= !n.topo.leafGroup.empty();
  if (anyGroup)
    for (const topo::ClusterNode& n : v.nodes)
      s.groupOfNode.push_back(groups.emplace(n.topo.leafGroup, static_cast<int>(groups.size())).first->second);
  for (int r = 0; r < v.nranks(); ++r) {
    s.nodeOfRank[r] = v.ranks[r].node;
    s.railOfRank[r] = std::clamp(v.ranks[r].rail, 0, rails - 1);
  }
  s.ringOrder = v.ringOrder();
  return s;
}

NodeFacts nodeFacts(const topo::System& s) {
  NodeFacts f;
  std::vector<int> gpus = s.ofKind(topo::NodeKind::kGpu);
  f.gpus = static_cast<int>(gpus.size());
  topo::Rails rails = topo::computeRails(s);
  f.rails = static_cast<int>(rails.computeNics.size());
  for (int nic : rails.computeNics)
    for (const topo::NetPort& p : s.nodes[nic].ports)
      f.nicBps = std::max(f.nicBps, p.speedMbps * 1e6 / 8);
  f.nvlink = gpus.size() > 1;
  for (size_t i = 0; i < gpus.size(); ++i)
    for (size_t j = i + 1; j < gpus.size(); ++j) {
      topo::Path p = topo::pathBetween(s, gpus[i], gpus[j]);
      if (p.kind != topo::PathKind::kNvLink && p.kind != topo::PathKind::kNvSwitch) f.nvlink = false;
      if (p.gbps > 0) f.gpuPathBps = f.gpuPathBps == 0 ? p.gbps * 1e9 : std::min(f.gpuPathBps, p.gbps * 1e9);
    }
  for (int c : s.ofKind(topo::NodeKind::kCpu)) f.cores += s.nodes[c].cores;
  return f;
}

Result<FabricFacts> fabricFacts(const topo::fabric::Fabric& f, const topo::fabric::Analysis& a, const Constants& c) {
  namespace fb = topo::fabric;
  FabricFacts out;
  if (a.hosts.empty()) return invalidArgument("%s: the fabric has no named hosts to place ranks on", f.sourceName.c_str());
  // Hosts ordered by leaf group, then name: node-major numbering keeps a group's nodes together.
  std::vector<const fb::HostInfo*> hosts;
  for (const fb::HostInfo& h : a.hosts) hosts.push_back(&h);
  std::stable_sort(hosts.begin(), hosts.end(), [](const fb::HostInfo* x, const fb::HostInfo* y) {
    return x->leafGroup < y->leafGroup;
  });
  std::map<int, int> groupIds;
  std::map<int, int> perGroup;
  for (const fb::HostInfo* h : hosts) {
    int g = groupIds.emplace(h->leafGroup, static_cast<int>(groupIds.size())).first->second;
    out.groupOfNode.push_back(g);
    out.nodesPerLeaf = std::max(out.nodesPerLeaf, ++perGroup[g]);
  }
  out.nodes = static_cast<int>(hosts.size());
  out.railOptimized = a.railOptimized;
  if (a.railOptimized) {
    out.rails = static_cast<int>(a.rails.size());
  } else {  // every NIC of a host on one leaf (or group): NICs per host
    for (const fb::HostInfo& h : a.hosts) out.rails = std::max(out.rails, static_cast<int>(h.hcas.size()));
  }
  out.rails = std::max(1, out.rails);
  // Per leaf: host-facing and spine-facing bandwidth from the cables themselves.
  std::vector<double> down(f.switches.size(), 0), up(f.switches.size(), 0);
  std::vector<double> hostRates;
  for (const fb::Link& l : f.links) {
    const double g = l.gbps();
    if (l.a.isSwitch && l.b.isSwitch) {
      for (int side = 0; side < 2; ++side) {
        const fb::Endpoint& lo = side ? l.b : l.a;
        const fb::Endpoint& hi = side ? l.a : l.b;
        if (f.switches[lo.index].tier == fb::Tier::kLeaf && f.switches[hi.index].tier == fb::Tier::kSpine)
          up[lo.index] += g;
      }
    } else {
      const fb::Endpoint& sw = l.a.isSwitch ? l.a : l.b;
      const fb::Endpoint& ca = l.a.isSwitch ? l.b : l.a;
      if (!sw.isSwitch || ca.isSwitch || f.hcas[ca.index].kind != fb::CaKind::kHost) continue;
      down[sw.index] += g;
      if (g > 0) hostRates.push_back(g);
    }
  }
  for (const fb::LeafInfo& leaf : a.leaves) {
    const double d = down[leaf.switchIndex], u = up[leaf.switchIndex];
    if (d > 0 && u > 0) out.spineOversub = std::max(out.spineOversub, d / u);
  }
  if (!hostRates.empty()) {
    std::sort(hostRates.begin(), hostRates.end());
    const double gbps = hostRates[hostRates.size() / 2];
    out.nicBps = gbps * 1e9 / 8 * c[K::kNetPayloadShare];
  }
  return out;
}

Result<topo::fabric::Fabric> loadFabricFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalidArgument("cannot read the fabric file '%s'", path.c_str());
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.find("\"trellis-cluster\"") != std::string::npos) return topo::fabric::loadClusterFile(path);
  return topo::fabric::loadIbnetdiscover(path);
}

NetFacts localNetFacts(const std::string& topoFile, const Constants& c) {
  NetFacts f;
  std::string file = topoFile;
  if (file.empty())
    if (ParamBase* p = findParam("TRELLIS_TOPO_FILE")) file = p->valueString();
  Result<topo::System> sys = file.empty() ? topo::detectLocalSystem() : topo::loadTopologyFile(file);
  if (sys) f.nicBps = nodeFacts(sys.value()).nicBps * c[K::kNetPayloadShare];
  else f.note += "no topology (" + sys.status().message() + "); ";
  std::string fabricFile;
  if (ParamBase* p = findParam("TRELLIS_FABRIC_FILE")) fabricFile = p->valueString();
  if (!fabricFile.empty()) {
    Result<topo::fabric::Fabric> fab = loadFabricFile(fabricFile);
    if (fab) {
      Result<FabricFacts> ff = fabricFacts(fab.value(), topo::fabric::analyze(fab.value()), c);
      if (ff) f.spineOversub = ff->spineOversub;
      else f.note += ff.status().message() + "; ";
    } else {
      f.note += fab.status().message() + "; ";
    }
  }
  return f;
}

}  // namespace trellis::tuner
