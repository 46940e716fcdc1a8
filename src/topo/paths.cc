#include "topo/paths.h"

#include <algorithm>
#include <map>

namespace trellis::topo {

const char* pathKindName(PathKind k) {
  switch (k) {
    case PathKind::kLoc: return "LOC";
    case PathKind::kNvLink: return "NVL";
    case PathKind::kNvSwitch: return "NVS";
    case PathKind::kPix: return "PIX";
    case PathKind::kPxb: return "PXB";
    case PathKind::kPhb: return "PHB";
    case PathKind::kNode: return "NODE";
    case PathKind::kSys: return "SYS";
    case PathKind::kNet: return "NET";
  }
  return "?";
}

namespace {

std::vector<int> ancestry(const System& s, int n) {  // n, parent, ..., cpu
  std::vector<int> chain;
  for (int x = n; x >= 0; x = s.nodes[x].parent) chain.push_back(x);
  return chain;
}

double linkOf(const Node& n) { return upstreamGBps(n); }

double minPositive(double a, double b) {
  if (a <= 0) return b;
  if (b <= 0) return a;
  return std::min(a, b);
}

// "dddd:bb" of a bus id: devices whose top-level ancestors share it hang off one host bridge.
std::string hostBridge(const std::string& busId) { return busId.size() >= 7 ? busId.substr(0, busId.size() - 5) : busId; }

// Links and bandwidth of a bundle set; a file lists each direction, so a-b and b-a are one bundle
// counted from the side that lists more.
struct Bundle {
  int count = 0;
  double gbps = 0;
};

Bundle sum(const System& s, int from, int to, bool toSwitches, const LinkRates& r) {
  Bundle b;
  for (const NvLink& l : s.nvlinks) {
    if (l.from != from || l.kind != LinkKind::kNvLink) continue;
    bool match = toSwitches ? (l.to >= 0 && s.nodes[l.to].kind == NodeKind::kNvSwitch) : l.to == to;
    if (!match) continue;
    b.count += l.count;
    b.gbps += l.count * (l.gbpsPerLink > 0 ? l.gbpsPerLink : r.nvlinkPerLink);
  }
  return b;
}

Bundle nvlinkBundle(const System& s, int a, int b, const LinkRates& r) {
  Bundle x = sum(s, a, b, false, r), y = sum(s, b, a, false, r);
  return x.count >= y.count ? x : y;
}

}  // namespace

Path pathBetween(const System& s, int a, int b, const LinkRates& rates) {
  if (a == b) return {PathKind::kLoc, 0};
  const Node& na = s.nodes[a];
  const Node& nb = s.nodes[b];
  if (na.kind == NodeKind::kGpu || nb.kind == NodeKind::kGpu) {  // GPU-GPU, or GPU-CPU on POWER
    Bundle direct = nvlinkBundle(s, a, b, rates);
    if (direct.count > 0) return {PathKind::kNvLink, direct.gbps, direct.count};
  }
  if (na.kind == NodeKind::kGpu && nb.kind == NodeKind::kGpu) {
    Bundle sa = sum(s, a, -1, true, rates), sb = sum(s, b, -1, true, rates);
    if (sa.count > 0 && sb.count > 0) return {PathKind::kNvSwitch, std::min(sa.gbps, sb.gbps), std::min(sa.count, sb.count)};
  }
  std::vector<int> ca = ancestry(s, a), cb = ancestry(s, b);
  // Lowest common ancestor.
  int lca = -1;
  for (int x : ca)
    if (std::find(cb.begin(), cb.end(), x) != cb.end()) {
      lca = x;
      break;
    }
  // Bottleneck: every upstream link below the LCA on both sides.
  double bw = 0;
  for (int x : ca) {
    if (x == lca) break;
    bw = minPositive(bw, linkOf(s.nodes[x]));
  }
  for (int x : cb) {
    if (x == lca) break;
    bw = minPositive(bw, linkOf(s.nodes[x]));
  }
  if (lca < 0) {  // different CPUs (roots)
    return {PathKind::kSys, minPositive(bw, rates.smp)};
  }
  const Node& l = s.nodes[lca];
  if (l.kind != NodeKind::kCpu) {
    bool direct = na.parent == lca && nb.parent == lca;
    return {direct ? PathKind::kPix : PathKind::kPxb, bw};
  }
  if (lca == a || lca == b) return {PathKind::kPhb, bw};  // a CPU and a device below it
  // Both under one CPU: through one host bridge (PHB) or across host bridges of the NUMA node (NODE).
  std::string ha = ca.size() >= 2 ? hostBridge(s.nodes[ca[ca.size() - 2]].busId) : "";
  std::string hb = cb.size() >= 2 ? hostBridge(s.nodes[cb[cb.size() - 2]].busId) : "";
  return {ha == hb ? PathKind::kPhb : PathKind::kNode, bw};
}

std::vector<int> nearestNics(const System& s, int dev) {
  std::vector<int> nics = s.ofKind(NodeKind::kNic);
  std::stable_sort(nics.begin(), nics.end(), [&](int x, int y) {
    Path px = pathBetween(s, dev, x), py = pathBetween(s, dev, y);
    if (px.kind != py.kind) return px.kind < py.kind;
    return px.gbps > py.gbps;
  });
  return nics;
}

int Rails::railOfNic(int nic) const {
  for (size_t r = 0; r < computeNics.size(); ++r)
    if (computeNics[r] == nic) return static_cast<int>(r);
  return -1;
}

Rails computeRails(const System& s) {
  Rails rails;
  std::vector<int> gpus = s.ofKind(NodeKind::kGpu), nics = s.ofKind(NodeKind::kNic);
  // Each GPU takes its nearest NIC; among equally near NICs, the least used so far (a 1:1 rail
  // layout stays 1:1, a shared NIC is shared).
  std::map<int, int> load;
  for (int g : gpus) {
    std::vector<int> order = nearestNics(s, g);
    int pick = -1;
    if (!order.empty()) {
      PathKind best = pathBetween(s, g, order[0]).kind;
      for (int n : order) {
        if (pathBetween(s, g, n).kind != best) break;
        if (pick < 0 || load[n] < load[pick]) pick = n;
      }
      ++load[pick];
    }
    rails.gpuNic.push_back(pick);
  }
  for (int n : nics)
    if (gpus.empty() || load.count(n)) rails.computeNics.push_back(n);
  return rails;
}

}  // namespace trellis::topo
