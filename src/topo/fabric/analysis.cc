// Rail structure of a fabric: which HCA index each leaf serves, which leaves share hosts (leaf
// groups, i.e. scalable units), which spines serve which groups, and which HCAs are off their rail.
//
// Rules (documented in docs/FABRIC.md):
// - A leaf's rail is the HCA index most of its host HCAs have (ties: the lower index).
// - Leaves are in one group when some named host has HCAs on both (union-find over hosts).
// - Leaf groups are in one spine group when their leaves share a spine (union-find over spines).
// - An HCA violates its rail when its index is known and differs from its leaf's rail.
#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "topo/fabric/fabric.h"
#include "topo/fabric/hostlist.h"
#include "topo/fabric/text_util.h"

namespace trellis::topo::fabric {
namespace {

class UnionFind {
 public:
  explicit UnionFind(size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  size_t find(size_t x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void unite(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }

 private:
  std::vector<size_t> parent_;
};

std::string numbered(const char* prefix, size_t i) {
  return formatString("%s%02zu", prefix, i + 1);
}

// Switches of one tier ordered by name.
std::vector<uint32_t> switchesOfTier(const Fabric& f, Tier tier) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < f.switches.size(); ++i)
    if (f.switches[i].tier == tier) out.push_back(i);
  std::sort(out.begin(), out.end(), [&](uint32_t a, uint32_t b) {
    return naturalLess(f.switches[a].name, f.switches[b].name);
  });
  return out;
}

struct HcaLink {
  uint32_t leafSwitch = 0;
  uint32_t port = 0;
  bool linked = false;
};

}  // namespace

int Analysis::leafOf(uint32_t switchIndex) const {
  for (size_t i = 0; i < leaves.size(); ++i)
    if (leaves[i].switchIndex == switchIndex) return static_cast<int>(i);
  return -1;
}

int Analysis::hostIndex(const std::string& name) const {
  auto it = std::lower_bound(hosts.begin(), hosts.end(), name,
                             [](const HostInfo& h, const std::string& n) { return h.name < n; });
  return it != hosts.end() && it->name == name ? static_cast<int>(it - hosts.begin()) : -1;
}

Analysis analyze(const Fabric& f) {
  Analysis a;
  a.warnings = f.warnings;
  std::vector<uint32_t> leafSwitches = switchesOfTier(f, Tier::kLeaf);
  a.spines = switchesOfTier(f, Tier::kSpine);
  a.cores = switchesOfTier(f, Tier::kCore);
  std::vector<int> leafPos(f.switches.size(), -1);
  for (uint32_t s : leafSwitches) {
    leafPos[s] = static_cast<int>(a.leaves.size());
    a.leaves.emplace_back();
    a.leaves.back().switchIndex = s;
  }

  // HCA -> leaf, per-leaf HCA index histogram, leaf -> spines.
  std::vector<HcaLink> hcaLink(f.hcas.size());
  std::vector<std::map<int, uint32_t>> indexCount(a.leaves.size());
  std::vector<std::set<uint32_t>> spinesOf(a.leaves.size());
  for (const Link& l : f.links) {
    if (l.a.isSwitch && l.b.isSwitch) {
      for (int side = 0; side < 2; ++side) {
        const Endpoint& lo = side ? l.b : l.a;
        const Endpoint& hi = side ? l.a : l.b;
        if (leafPos[lo.index] >= 0 && f.switches[hi.index].tier == Tier::kSpine) {
          spinesOf[leafPos[lo.index]].insert(hi.index);
          ++a.leaves[leafPos[lo.index]].uplinkCables;
        }
      }
      continue;
    }
    const Endpoint& sw = l.a.isSwitch ? l.a : l.b;
    const Endpoint& ca = l.a.isSwitch ? l.b : l.a;
    if (!sw.isSwitch || ca.isSwitch || leafPos[sw.index] < 0) continue;
    const Hca& h = f.hcas[ca.index];
    if (h.kind != CaKind::kHost || hcaLink[ca.index].linked) continue;
    hcaLink[ca.index] = {sw.index, sw.port, true};
    LeafInfo& leaf = a.leaves[leafPos[sw.index]];
    (h.nameStatus == NameStatus::kNamed ? leaf.namedHcas : leaf.unnamedHcas)++;
    if (h.hcaIndex >= 0) ++indexCount[leafPos[sw.index]][h.hcaIndex];
  }

  // Rails.
  std::set<int> rails;
  bool dominated = true;
  for (size_t i = 0; i < a.leaves.size(); ++i) {
    a.leaves[i].spines.assign(spinesOf[i].begin(), spinesOf[i].end());
    uint32_t best = 0, total = 0;
    for (auto [index, count] : indexCount[i]) {
      total += count;
      if (count > best) {
        best = count;
        a.leaves[i].rail = index;
      }
    }
    a.leaves[i].offRailHcas = total - best;
    if (a.leaves[i].rail >= 0) rails.insert(a.leaves[i].rail);
    if (total && best * 2 <= total) dominated = false;
  }
  a.rails.assign(rails.begin(), rails.end());
  a.railOptimized = a.rails.size() > 1 && dominated;

  // Hosts and unnamed HCAs.
  std::map<std::string, std::vector<uint32_t>> hostHcas;
  for (uint32_t i = 0; i < f.hcas.size(); ++i) {
    const Hca& h = f.hcas[i];
    if (h.kind == CaKind::kAggregationNode) ++a.aggregationNodes;
    if (h.kind != CaKind::kHost) continue;
    if (h.nameStatus == NameStatus::kNamed) hostHcas[h.host].push_back(i);
    else a.unnamedHcas.push_back(i);
  }
  for (auto& [name, hcas] : hostHcas) {
    std::stable_sort(hcas.begin(), hcas.end(), [&](uint32_t x, uint32_t y) {
      return f.hcas[x].hcaIndex < f.hcas[y].hcaIndex;
    });
    a.hosts.push_back(HostInfo{name, -1, hcas});
  }

  // Leaf groups: leaves joined by the hosts they share.
  UnionFind uf(a.leaves.size());
  for (const HostInfo& host : a.hosts) {
    int first = -1;
    for (uint32_t h : host.hcas) {
      if (!hcaLink[h].linked) continue;
      int lp = leafPos[hcaLink[h].leafSwitch];
      if (first < 0) first = lp;
      else uf.unite(first, lp);
    }
  }
  std::map<size_t, int> rootToGroup;  // leaves are name-ordered, so groups come out in that order
  for (size_t i = 0; i < a.leaves.size(); ++i) {
    auto [it, fresh] = rootToGroup.emplace(uf.find(i), static_cast<int>(a.leafGroups.size()));
    if (fresh) {
      a.leafGroups.emplace_back();
      a.leafGroups.back().name = numbered("su", a.leafGroups.size() - 1);
    }
    LeafGroup& g = a.leafGroups[it->second];
    g.leaves.push_back(static_cast<uint32_t>(i));
    g.unnamedHostsAtLeast = std::max(g.unnamedHostsAtLeast, a.leaves[i].unnamedHcas);
    a.leaves[i].group = it->second;
  }
  for (HostInfo& host : a.hosts) {
    for (uint32_t h : host.hcas) {
      if (!hcaLink[h].linked) continue;
      host.leafGroup = a.leaves[leafPos[hcaLink[h].leafSwitch]].group;
      break;
    }
    if (host.leafGroup >= 0) a.leafGroups[host.leafGroup].hosts.push_back(host.name);
    else a.warnings.push_back("host " + host.name + " has no HCA cabled to a leaf");
  }
  for (LeafGroup& g : a.leafGroups) {
    std::sort(g.hosts.begin(), g.hosts.end(),
              [](const std::string& x, const std::string& y) { return naturalLess(x, y); });
    std::set<int> groupRails;
    for (uint32_t li : g.leaves) groupRails.insert(a.leaves[li].rail);
    for (int r : a.rails)
      if (a.railOptimized && !groupRails.count(r))
        a.warnings.push_back(formatString("leaf group %s has no leaf for rail %d (switch absent or "
                                          "unreachable in this dump)", g.name.c_str(), r));
  }

  // Spine groups: leaf groups joined by the spines above them.
  const size_t ng = a.leafGroups.size();
  UnionFind sf(ng + f.switches.size());
  for (const LeafInfo& leaf : a.leaves)
    for (uint32_t s : leaf.spines) sf.unite(leaf.group, ng + s);
  std::map<size_t, int> rootToSpineGroup;
  for (uint32_t s : a.spines) {
    auto [it, fresh] = rootToSpineGroup.emplace(sf.find(ng + s), static_cast<int>(a.spineGroups.size()));
    if (fresh) {
      a.spineGroups.emplace_back();
      a.spineGroups.back().name = numbered("spines", a.spineGroups.size() - 1);
    }
    a.spineGroups[it->second].spines.push_back(s);
  }
  for (size_t g = 0; g < ng; ++g) {
    auto it = rootToSpineGroup.find(sf.find(g));
    if (it == rootToSpineGroup.end()) {
      if (!a.spines.empty()) a.warnings.push_back("leaf group " + a.leafGroups[g].name + " has no uplinks");
      continue;
    }
    a.leafGroups[g].spineGroup = it->second;
    a.spineGroups[it->second].leafGroups.push_back(static_cast<int>(g));
  }

  // Rail violations, in host order then unnamed HCAs.
  auto check = [&](uint32_t h) {
    const Hca& hca = f.hcas[h];
    if (!hcaLink[h].linked || hca.hcaIndex < 0) return;
    const LeafInfo& leaf = a.leaves[leafPos[hcaLink[h].leafSwitch]];
    if (leaf.rail < 0 || leaf.rail == hca.hcaIndex) return;
    RailViolation v{hca.host, h, leaf.switchIndex, hca.hcaIndex, leaf.rail, ""};
    std::string who = hca.nameStatus == NameStatus::kNamed
                          ? hca.host
                          : "unnamed HCA " + guidString(hca.guid) + " (\"" + hca.description + "\")";
    v.message = formatString("%s: NIC %d (%s) is cabled to %s port %u, a leaf of rail %d",
                             who.c_str(), hca.hcaIndex, hca.hcaName.c_str(),
                             f.switches[leaf.switchIndex].name.c_str(), hcaLink[h].port, leaf.rail);
    a.railViolations.push_back(std::move(v));
  };
  for (const HostInfo& host : a.hosts)
    for (uint32_t h : host.hcas) check(h);
  for (uint32_t h : a.unnamedHcas) check(h);

  a.hcaLeaf.assign(f.hcas.size(), -1);
  a.hcaPort.assign(f.hcas.size(), 0);
  for (uint32_t h = 0; h < f.hcas.size(); ++h) {
    if (!hcaLink[h].linked) continue;
    a.hcaLeaf[h] = leafPos[hcaLink[h].leafSwitch];
    a.hcaPort[h] = hcaLink[h].port;
  }
  for (uint32_t i = 0; i < f.switches.size(); ++i)
    if (f.switches[i].tier == Tier::kUnknown)
      a.warnings.push_back("switch " + f.switches[i].name + " is not on any path to a host");
  return a;
}

}  // namespace trellis::topo::fabric
