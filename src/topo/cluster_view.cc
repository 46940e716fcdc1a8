#include "topo/cluster_view.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "topo/fabric/fabric.h"
#include "topo/paths.h"

namespace trellis::topo {

namespace {

std::string nicName(const Node& n) {
  if (!n.ports.empty() && !n.ports[0].name.empty()) return n.ports[0].name;
  if (!n.busId.empty()) return n.busId;
  return "nic" + std::to_string(n.id);
}

std::string nicNetdev(const Node& n) {
  for (const NetPort& p : n.ports)
    if (!p.netdev.empty()) return p.netdev;
  return "";
}

// A device's NUMA node, else its nearest ancestor's (files may give it only on the CPU).
int numaOf(const System& s, int id) {
  for (int x = id; x >= 0; x = s.nodes[x].parent)
    if (s.nodes[x].numa >= 0) return s.nodes[x].numa;
  return -1;
}

template <size_t N>
void putString(char (&dst)[N], const std::string& s) {
  std::memset(dst, 0, N);
  std::memcpy(dst, s.data(), std::min(s.size(), N - 1));
}

template <size_t N>
std::string getString(const char (&src)[N]) {
  return std::string(src, strnlen(src, N));
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "none" : out;
}

std::string nodeLabel(const ClusterNode& n, int index) {
  return "node " + std::to_string(index) + " (" + (n.topo.host.empty() ? "?" : n.topo.host) +
         ", rank " + std::to_string(n.ranks.front()) + ")";
}

}  // namespace

LocalTopology summarize(const System& s) {
  LocalTopology t;
  t.known = true;
  t.host = s.hostname;
  Rails rails = computeRails(s);
  for (size_t r = 0; r < rails.computeNics.size(); ++r) {
    const Node& n = s.nodes[rails.computeNics[r]];
    if (static_cast<int>(r) >= kMaxRails) {
      t.notes.push_back("NIC " + nicName(n) + " and later ones dropped: more than " +
                        std::to_string(kMaxRails) + " rail NICs");
      break;
    }
    t.nics.push_back(nicName(n));
    t.netdevs.push_back(nicNetdev(n));
    t.nicNuma.push_back(numaOf(s, n.id));
  }
  const std::vector<int> gpus = s.ofKind(NodeKind::kGpu);
  for (size_t g = 0; g < rails.gpuNic.size() && g < static_cast<size_t>(kMaxDigestGpus); ++g) {
    int nic = rails.gpuNic[g];
    int rail = nic < 0 ? -1 : rails.railOfNic(nic);
    t.gpuRail.push_back(rail < static_cast<int>(t.nics.size()) ? rail : -1);
    t.gpuNuma.push_back(g < gpus.size() ? numaOf(s, gpus[g]) : -1);
  }
  t.leaves.assign(t.nics.size(), "");
  t.leafRail.assign(t.nics.size(), -1);
  return t;
}

void addPlacement(LocalTopology* t, const fabric::HostPlacement& p) {
  t->leafGroup = p.leafGroup;
  t->spineGroup = p.spineGroup;
  t->leaves.assign(t->nics.size(), "");
  t->leafRail.assign(t->nics.size(), -1);
  for (size_t r = 0; r < t->nics.size(); ++r) {
    const fabric::HcaPlacement* hit = nullptr;
    for (const auto& h : p.hcas)
      if (h.hcaName == t->nics[r]) hit = &h;
    if (hit == nullptr)
      for (const auto& h : p.hcas)
        if (h.hcaIndex == static_cast<int>(r)) hit = &h;
    if (hit == nullptr) {
      t->notes.push_back("NIC " + t->nics[r] + " (rail " + std::to_string(r) +
                         ") is not among host " + p.host + "'s HCAs in the fabric description");
      continue;
    }
    t->leaves[r] = hit->leafSwitch;
    t->leafRail[r] = hit->rail;
  }
}

RankDigest toDigest(uint64_t hostId, const LocalTopology& t) {
  RankDigest d;
  std::memset(&d, 0, sizeof d);
  d.magic = RankDigest::kMagic;
  d.version = RankDigest::kVersion;
  d.flags = t.known ? 1 : 0;
  d.hostId = hostId;
  d.nrails = static_cast<int16_t>(std::min<size_t>(t.nics.size(), kMaxRails));
  d.ngpus = static_cast<int16_t>(std::min<size_t>(t.gpuRail.size(), kMaxDigestGpus));
  for (int r = 0; r < kMaxRails; ++r) d.leafRail[r] = d.nicNuma[r] = -1;
  for (int g = 0; g < kMaxDigestGpus; ++g) d.gpuNuma[g] = -1;
  for (int g = 0; g < d.ngpus; ++g) {
    d.gpuRail[g] = static_cast<int16_t>(t.gpuRail[g]);
    if (static_cast<size_t>(g) < t.gpuNuma.size()) d.gpuNuma[g] = static_cast<int16_t>(t.gpuNuma[g]);
  }
  putString(d.host, t.host);
  putString(d.leafGroup, t.leafGroup);
  putString(d.spineGroup, t.spineGroup);
  for (int r = 0; r < d.nrails; ++r) {
    putString(d.nic[r], t.nics[r]);
    if (static_cast<size_t>(r) < t.leaves.size()) putString(d.leaf[r], t.leaves[r]);
    if (static_cast<size_t>(r) < t.leafRail.size())
      d.leafRail[r] = static_cast<int16_t>(t.leafRail[r]);
    if (static_cast<size_t>(r) < t.nicNuma.size()) d.nicNuma[r] = static_cast<int16_t>(t.nicNuma[r]);
  }
  return d;
}

Result<LocalTopology> fromDigest(const RankDigest& d, int fromRank, uint64_t* hostId) {
  if (d.magic != RankDigest::kMagic || d.version != RankDigest::kVersion)
    return invalidArgument(
        "rank %d sent a topology digest with magic 0x%08x version %u (expected 0x%08x version %u)",
        fromRank, d.magic, d.version, RankDigest::kMagic, RankDigest::kVersion);
  if (d.nrails < 0 || d.nrails > kMaxRails || d.ngpus < 0 || d.ngpus > kMaxDigestGpus)
    return invalidArgument(
        "rank %d sent a topology digest with %d rails and %d GPUs (at most %d and %d)", fromRank,
        d.nrails, d.ngpus, kMaxRails, kMaxDigestGpus);
  LocalTopology t;
  t.known = (d.flags & 1) != 0;
  *hostId = d.hostId;
  t.host = getString(d.host);
  t.leafGroup = getString(d.leafGroup);
  t.spineGroup = getString(d.spineGroup);
  for (int r = 0; r < d.nrails; ++r) {
    t.nics.push_back(getString(d.nic[r]));
    t.netdevs.push_back("");
    t.leaves.push_back(getString(d.leaf[r]));
    t.leafRail.push_back(d.leafRail[r] >= -1 && d.leafRail[r] < 1024 ? d.leafRail[r] : -1);
    t.nicNuma.push_back(d.nicNuma[r] >= -1 ? d.nicNuma[r] : -1);
  }
  for (int g = 0; g < d.ngpus; ++g) {
    t.gpuRail.push_back(d.gpuRail[g] >= 0 && d.gpuRail[g] < d.nrails ? d.gpuRail[g] : -1);
    t.gpuNuma.push_back(d.gpuNuma[g] >= -1 ? d.gpuNuma[g] : -1);
  }
  return t;
}

std::vector<int> assignRails(int localRank, int localSize, int nrails,
                             const std::vector<int>& gpuRail) {
  std::vector<int> out;
  if (nrails <= 0 || localSize <= 0 || localRank < 0) return out;
  if (localSize < nrails) {
    for (int r = localRank; r < nrails; r += localSize) out.push_back(r);
    return out;
  }
  int rail = localRank % nrails;
  if (!gpuRail.empty()) {
    int g = gpuRail[localRank % gpuRail.size()];
    if (g >= 0 && g < nrails) rail = g;
  }
  out.push_back(rail);
  return out;
}

ClusterView ClusterView::build(const std::vector<uint64_t>& hostIds,
                               const std::vector<LocalTopology>& locals) {
  ClusterView v;
  const int n = static_cast<int>(hostIds.size());
  v.ranks.resize(n);
  std::map<uint64_t, int> nodeOfHost;
  for (int r = 0; r < n; ++r) {
    auto it = nodeOfHost.find(hostIds[r]);
    if (it == nodeOfHost.end()) {
      it = nodeOfHost.emplace(hostIds[r], static_cast<int>(v.nodes.size())).first;
      ClusterNode node;
      node.hostId = hostIds[r];
      node.topo = locals[r];
      v.nodes.push_back(std::move(node));
    }
    v.ranks[r].node = it->second;
    v.ranks[r].localRank = static_cast<int>(v.nodes[it->second].ranks.size());
    v.nodes[it->second].ranks.push_back(r);
  }
  for (int r = 0; r < n; ++r) {
    RankPlace& p = v.ranks[r];
    const LocalTopology& t = locals[r];
    const int localSize = static_cast<int>(v.nodes[p.node].ranks.size());
    p.rails = assignRails(p.localRank, localSize, static_cast<int>(t.nics.size()), t.gpuRail);
    if (!p.rails.empty()) {
      p.rail = p.rails.front();
      p.nic = t.nics[p.rail];
      if (static_cast<size_t>(p.rail) < t.leaves.size()) p.leaf = t.leaves[p.rail];
      if (static_cast<size_t>(p.rail) < t.nicNuma.size()) p.numa = t.nicNuma[p.rail];
    }
    if (!t.gpuRail.empty()) {
      p.gpu = p.localRank % static_cast<int>(t.gpuRail.size());
      if (static_cast<size_t>(p.gpu) < t.gpuNuma.size() && t.gpuNuma[p.gpu] >= 0) p.numa = t.gpuNuma[p.gpu];
    }
  }
  // Rail consistency across nodes, against what most nodes have.
  std::vector<std::string> w;
  std::map<size_t, int> railCounts;
  int known = 0;
  for (const ClusterNode& node : v.nodes)
    if (node.topo.known) {
      ++known;
      ++railCounts[node.topo.nics.size()];
    }
  if (known > 0 && known < v.nnodes())
    for (int i = 0; i < v.nnodes(); ++i)
      if (!v.nodes[i].topo.known)
        w.push_back(nodeLabel(v.nodes[i], i) +
                    ": topology unknown (detection failed or disabled) while " +
                    std::to_string(known) + " other node(s) know theirs; its ranks have no rail");
  size_t commonRails = 0;
  int best = 0;
  for (const auto& [count, nodes] : railCounts)
    if (nodes > best) best = nodes, commonRails = count;
  for (int i = 0; i < v.nnodes(); ++i) {
    const ClusterNode& node = v.nodes[i];
    if (!node.topo.known) continue;
    if (node.topo.nics.size() != commonRails)
      w.push_back(nodeLabel(node, i) + " has " + std::to_string(node.topo.nics.size()) +
                  " rail NIC(s) [" + joined(node.topo.nics) + "] but " + std::to_string(best) +
                  " of " + std::to_string(known) + " nodes have " + std::to_string(commonRails));
  }
  for (size_t r = 0; r < commonRails; ++r) {
    std::map<std::string, int> names;
    for (const ClusterNode& node : v.nodes)
      if (node.topo.known && r < node.topo.nics.size()) ++names[node.topo.nics[r]];
    std::string common;
    int most = 0;
    for (const auto& [name, cnt] : names)
      if (cnt > most) most = cnt, common = name;
    for (int i = 0; i < v.nnodes(); ++i) {
      const ClusterNode& node = v.nodes[i];
      if (node.topo.known && r < node.topo.nics.size() && node.topo.nics[r] != common)
        w.push_back(nodeLabel(node, i) + ": NIC " + std::to_string(r) + " is '" +
                    node.topo.nics[r] + "' but " + std::to_string(most) + " node(s) have '" +
                    common + "' on rail " + std::to_string(r));
    }
  }
  for (int i = 0; i < v.nnodes(); ++i) {
    const ClusterNode& node = v.nodes[i];
    for (size_t r = 0; r < node.topo.leafRail.size() && r < node.topo.nics.size(); ++r)
      if (node.topo.leafRail[r] >= 0 && node.topo.leafRail[r] != static_cast<int>(r))
        w.push_back(nodeLabel(node, i) + ": NIC " + std::to_string(r) + " (" + node.topo.nics[r] +
                    ") is cabled to leaf " + node.topo.leaves[r] + ", which serves rail " +
                    std::to_string(node.topo.leafRail[r]) + ", not rail " + std::to_string(r));
    for (const std::string& note : node.topo.notes) w.push_back(nodeLabel(node, i) + ": " + note);
  }
  constexpr size_t kMaxWarnings = 24;
  if (w.size() > kMaxWarnings) {
    size_t more = w.size() - kMaxWarnings;
    w.resize(kMaxWarnings);
    w.push_back("... and " + std::to_string(more) + " more rail warning(s)");
  }
  v.warnings = std::move(w);
  return v;
}

ClusterView ClusterView::synthetic(const std::vector<int>& ranksPerNode, int rails) {
  std::vector<uint64_t> hostIds;
  std::vector<LocalTopology> locals;
  for (size_t node = 0; node < ranksPerNode.size(); ++node) {
    LocalTopology t;
    t.known = true;
    t.host = "node" + std::to_string(node);
    for (int r = 0; r < rails; ++r) {
      t.nics.push_back("nic" + std::to_string(r));
      t.netdevs.push_back("");
      t.leaves.push_back("");
      t.leafRail.push_back(-1);
    }
    for (int i = 0; i < ranksPerNode[node]; ++i) {
      hostIds.push_back(node + 1);
      locals.push_back(t);
    }
  }
  return build(hostIds, locals);
}

int ClusterView::maxLocal() const {
  size_t m = 0;
  for (const auto& n : nodes) m = std::max(m, n.ranks.size());
  return static_cast<int>(m);
}

int ClusterView::minLocal() const {
  size_t m = nodes.empty() ? 0 : SIZE_MAX;
  for (const auto& n : nodes) m = std::min(m, n.ranks.size());
  return static_cast<int>(m);
}

bool ClusterView::railsKnown() const {
  for (const auto& r : ranks)
    if (r.rail >= 0) return true;
  return false;
}

std::vector<int> ClusterView::slots(int node) const {
  std::vector<int> s = nodes[node].ranks;
  std::stable_sort(s.begin(), s.end(), [&](int a, int b) {
    int ra = ranks[a].rail < 0 ? INT_MAX : ranks[a].rail,
        rb = ranks[b].rail < 0 ? INT_MAX : ranks[b].rail;
    return ra < rb;
  });
  return s;
}

std::vector<int> ClusterView::nodeOrder() const {
  std::vector<int> order(nodes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const std::string &ga = nodes[a].topo.leafGroup, &gb = nodes[b].topo.leafGroup;
    if (ga.empty() != gb.empty()) return gb.empty();  // placed nodes first
    return ga < gb;
  });
  return order;
}

std::vector<int> ClusterView::ringOrder() const {
  std::vector<int> ring;
  std::vector<int> order = nodeOrder();
  for (size_t k = 0; k < order.size(); ++k) {
    std::vector<int> s = slots(order[k]);
    if (k % 2 == 1) std::reverse(s.begin(), s.end());
    ring.insert(ring.end(), s.begin(), s.end());
  }
  return ring;
}

std::string ClusterView::describe() const {
  std::string out =
      std::to_string(nranks()) + " ranks on " + std::to_string(nnodes()) + " node(s)\n";
  out += "rank node host local rails nic leaf\n";
  for (int r = 0; r < nranks(); ++r) {
    const RankPlace& p = ranks[r];
    std::string rails;
    for (int x : p.rails) rails += (rails.empty() ? "" : ",") + std::to_string(x);
    out += std::to_string(r) + " " + std::to_string(p.node) + " " +
           (nodes[p.node].topo.host.empty() ? "?" : nodes[p.node].topo.host) + " " +
           std::to_string(p.localRank) + " " + (rails.empty() ? "-" : rails) + " " +
           (p.nic.empty() ? "-" : p.nic) + " " + (p.leaf.empty() ? "-" : p.leaf) + "\n";
  }
  for (const auto& w : warnings) out += "warning: " + w + "\n";
  return out;
}

std::string ClusterView::toJson() const {
  using nlohmann::json;
  json rs = json::array();
  for (int r = 0; r < nranks(); ++r) {
    const RankPlace& p = ranks[r];
    rs.push_back({{"rank", r},
                  {"node", p.node},
                  {"local_rank", p.localRank},
                  {"rail", p.rail},
                  {"rails", p.rails},
                  {"nic", p.nic},
                  {"leaf", p.leaf},
                  {"gpu", p.gpu},
                  {"numa", p.numa}});
  }
  json ns = json::array();
  for (const ClusterNode& n : nodes)
    ns.push_back({{"host", n.topo.host},
                  {"ranks", n.ranks},
                  {"topology_known", n.topo.known},
                  {"nics", n.topo.nics},
                  {"leaves", n.topo.leaves},
                  {"leaf_group", n.topo.leafGroup},
                  {"spine_group", n.topo.spineGroup}});
  json j = {{"format", "trellis-cluster-view"},
            {"version", 1},
            {"ranks", rs},
            {"nodes", ns},
            {"warnings", warnings}};
  return j.dump(1);
}

}  // namespace trellis::topo
