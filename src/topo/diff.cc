#include "topo/diff.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "topo/paths.h"

namespace trellis::topo {

namespace {

std::vector<int> devicesInOrder(const System& s) {  // GPUs, then NICs, each by bus id
  std::vector<int> out;
  for (NodeKind k : {NodeKind::kGpu, NodeKind::kNic}) {
    std::vector<int> v = s.ofKind(k);
    std::stable_sort(v.begin(), v.end(), [&](int x, int y) { return s.nodes[x].busId < s.nodes[y].busId; });
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

std::string label(const System& s, size_t i) {
  size_t gpus = s.ofKind(NodeKind::kGpu).size();
  return i < gpus ? "GPU" + std::to_string(i) : "NIC" + std::to_string(i - gpus);
}

std::string cell(const System& s, int a, int b) {
  Path p = pathBetween(s, a, b);
  if (p.kind == PathKind::kNvLink || p.kind == PathKind::kNvSwitch) return "NV" + std::to_string(p.nvlinks);
  return pathKindName(p.kind);
}

}  // namespace

static bool madeUpIds(const System& s) {
  for (const Node& n : s.nodes)
    if (n.note.find("made up") != std::string::npos) return true;
  return false;
}

std::vector<std::string> diffSystems(const System& a, const System& b) {
  std::vector<std::string> out;
  const bool byBus = !madeUpIds(a) && !madeUpIds(b);
  for (NodeKind k : {NodeKind::kCpu, NodeKind::kGpu, NodeKind::kNic, NodeKind::kNvSwitch, NodeKind::kPciSwitch}) {
    size_t na = a.ofKind(k).size(), nb = b.ofKind(k).size();
    if (na != nb)
      out.push_back(std::string(nodeKindName(k)) + " count: " + std::to_string(na) + " vs " + std::to_string(nb));
  }
  // Devices by bus id (only meaningful when both sides have real ids; made-up ids are skipped).
  for (const Node& n : a.nodes) {
    if (!byBus || n.busId.empty() || n.kind == NodeKind::kPciSwitch) continue;
    int m = b.findBusId(n.busId);
    if (m < 0) {
      out.push_back(std::string("only in A: ") + nodeKindName(n.kind) + " " + n.busId);
      continue;
    }
    const Node& o = b.nodes[m];
    if (o.kind != n.kind)
      out.push_back(n.busId + ": kind " + nodeKindName(n.kind) + " vs " + nodeKindName(o.kind));
    if (o.numa != n.numa)
      out.push_back(n.busId + ": NUMA " + std::to_string(n.numa) + " vs " + std::to_string(o.numa));
    if (upstreamGBps(o) != upstreamGBps(n) && upstreamGBps(o) > 0 && upstreamGBps(n) > 0)
      out.push_back(n.busId + ": PCIe " + std::to_string(upstreamGBps(n)) + " vs " + std::to_string(upstreamGBps(o)) +
                    " GB/s");
  }
  for (const Node& n : b.nodes)
    if (byBus && !n.busId.empty() && n.kind != NodeKind::kPciSwitch && a.findBusId(n.busId) < 0)
      out.push_back(std::string("only in B: ") + nodeKindName(n.kind) + " " + n.busId);
  // Path matrix by ordinal, over the devices both have.
  std::vector<int> da = devicesInOrder(a), db = devicesInOrder(b);
  size_t ga = a.ofKind(NodeKind::kGpu).size(), gb = b.ofKind(NodeKind::kGpu).size();
  if (ga == gb && da.size() == db.size())
    for (size_t i = 0; i < da.size(); ++i)
      for (size_t j = i + 1; j < da.size(); ++j) {
        std::string x = cell(a, da[i], da[j]), y = cell(b, db[i], db[j]);
        if (x != y) out.push_back(label(a, i) + "-" + label(a, j) + ": " + x + " vs " + y);
      }
  Rails ra = computeRails(a), rb = computeRails(b);
  if (ra.computeNics.size() != rb.computeNics.size())
    out.push_back("rails: " + std::to_string(ra.computeNics.size()) + " vs " + std::to_string(rb.computeNics.size()));
  return out;
}

std::string toDot(const System& s) {
  std::ostringstream o;
  o << "graph topology {\n  node [shape=box, fontname=\"monospace\"];\n";
  for (const Node& n : s.nodes) {
    std::string name = n.kind == NodeKind::kCpu ? "CPU/NUMA " + std::to_string(n.numa) : n.busId;
    if (n.kind == NodeKind::kNic && !n.ports.empty()) name += "\\n" + n.ports[0].name;
    o << "  n" << n.id << " [label=\"" << nodeKindName(n.kind) << "\\n" << name << "\""
      << (n.degraded ? ", style=dashed" : "") << "];\n";
  }
  for (const Link& l : links(s)) {
    if (l.to < 0) continue;
    o << "  n" << l.from << " -- n" << l.to << " [label=\"";
    if (l.kind == LinkKind::kPcie) {
      if (l.gen) {
        o << "Gen" << l.gen << (l.width ? " x" + std::to_string(l.width) : "");
      } else if (l.gbps > 0) {
        o << static_cast<int>(l.gbps + 0.5) << " GB/s";
      }
    } else if (l.kind == LinkKind::kNvLink) {
      o << "NV" << l.count;
    } else {
      o << linkKindName(l.kind);
    }
    o << "\"" << (l.kind == LinkKind::kPcie ? "" : ", color=green") << "];\n";
  }
  o << "}\n";
  return o.str();
}

}  // namespace trellis::topo
