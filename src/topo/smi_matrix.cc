#include "topo/smi_matrix.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>

namespace trellis::topo {

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string t; in >> t;) out.push_back(t);
  return out;
}

std::string stripAnsi(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b') {
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

// PCI levels of a cell; NV# and X say nothing about the PCIe tree.
int level(const std::string& cell) {
  static const std::map<std::string, int> kLevels = {{"PIX", 1}, {"PXB", 2}, {"PHB", 3}, {"NODE", 4}, {"SYS", 5}};
  auto it = kLevels.find(cell);
  return it == kLevels.end() ? 0 : it->second;
}

struct Groups {  // union-find
  std::vector<int> up;
  explicit Groups(size_t n) : up(n) { std::iota(up.begin(), up.end(), 0); }
  int find(int x) { return up[x] == x ? x : up[x] = find(up[x]); }
  void join(int a, int b) { up[find(a)] = find(b); }
};

}  // namespace

bool looksLikeSmiMatrix(const std::string& text) {
  std::istringstream in(stripAnsi(text));
  for (std::string line; std::getline(in, line);) {
    auto t = split(line);
    if (t.empty()) continue;
    return t[0] == "GPU0" || (t[0].rfind("GPU", 0) == 0 && t.size() > 1 && t[1] == "X");
  }
  return false;
}

std::string maskFromCpuList(const std::string& list) {
  std::vector<unsigned> words;
  std::istringstream in(list);
  for (std::string r; std::getline(in, r, ',');) {
    char* end = nullptr;
    long lo = std::strtol(r.c_str(), &end, 10), hi = lo;
    if (end == r.c_str()) return "";
    if (*end == '-') hi = std::strtol(end + 1, nullptr, 10);
    for (long c = lo; c <= hi && c < 4096; ++c) {
      if (words.size() <= static_cast<size_t>(c / 32)) words.resize(c / 32 + 1, 0);
      words[c / 32] |= 1u << (c % 32);
    }
  }
  std::string out;
  for (size_t i = words.size(); i-- > 0;) {
    char b[16];
    std::snprintf(b, sizeof b, out.empty() ? "%x" : "%08x", words[i]);
    out += (out.empty() ? "" : ",") + std::string(b);
  }
  return out;
}

Result<System> fromSmiMatrix(const std::string& textIn, const std::string& origin) {
  std::string text = stripAnsi(textIn);
  std::istringstream in(text);
  std::vector<std::string> cols;
  struct Row {
    std::string name, affinity;
    std::vector<std::string> cells;
    int numa = -1;
  };
  std::vector<Row> rows;
  std::map<std::string, std::string> nicNames;  // NIC Legend: "NIC0: mlx5_0"
  int lineNo = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineNo;
    auto t = split(line);
    if (t.empty()) continue;
    if (cols.empty()) {
      if (t[0] != "GPU0") return invalidArgument("%s:%d: expected the header row (GPU0 GPU1 ...)", origin.c_str(), lineNo);
      for (const std::string& c : t) {
        if (c == "CPU") break;
        cols.push_back(c);
      }
      continue;
    }
    if (t.size() == 2 && t[0].back() == ':' && t[0].rfind("NIC", 0) == 0) {
      nicNames[t[0].substr(0, t[0].size() - 1)] = t[1];
      continue;
    }
    if (rows.size() == cols.size() || t[0] == "Legend:") continue;
    if (t[0] != cols[rows.size()])
      return invalidArgument("%s:%d: row '%s' where '%s' was expected", origin.c_str(), lineNo, t[0].c_str(),
                             cols[rows.size()].c_str());
    if (t.size() < cols.size() + 1)
      return invalidArgument("%s:%d: row %s has %zu cells for %zu columns (truncated?)", origin.c_str(), lineNo,
                             t[0].c_str(), t.size() - 1, cols.size());
    Row r;
    r.name = t[0];
    r.cells.assign(t.begin() + 1, t.begin() + 1 + cols.size());
    if (t.size() > cols.size() + 1) r.affinity = t[cols.size() + 1];
    if (t.size() > cols.size() + 2) r.numa = std::atoi(t[cols.size() + 2].c_str());
    if (t.size() > cols.size() + 2 && t[cols.size() + 2] == "N/A") r.numa = -1;
    rows.push_back(r);
  }
  if (cols.empty()) return invalidArgument("%s: no nvidia-smi topo -m matrix found", origin.c_str());
  if (rows.size() != cols.size())
    return invalidArgument("%s:%d: %zu rows for %zu columns (truncated?)", origin.c_str(), lineNo, rows.size(), cols.size());
  const size_t n = rows.size();
  System s;
  s.source = Source::kFile;
  // CPUs by NUMA node (unknown NUMA -> node 0).
  std::map<int, int> cpuOf;
  for (const Row& r : rows) {
    int numa = std::max(r.numa, 0);
    if (cpuOf.count(numa)) continue;
    Node c;
    c.kind = NodeKind::kCpu;
    c.numa = numa;
    c.affinity = maskFromCpuList(r.affinity);
    c.degraded = true;
    c.note = "from nvidia-smi topo -m (no CPU model)";
    cpuOf[numa] = s.add(c);
  }
  // Groups at each PCI level; a pair with an NV# cell gives no PCI information.
  auto groups = [&](int maxLevel) {
    Groups g(n);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) {
        int l = level(rows[i].cells[j]);
        if (l > 0 && l <= maxLevel) g.join(static_cast<int>(i), static_cast<int>(j));
      }
    return g;
  };
  Groups pix = groups(1), pxb = groups(2), phb = groups(3);
  std::map<int, int> hostBridge, upper, leaf;  // group root -> domain / node id
  std::map<int, int> members;
  for (size_t i = 0; i < n; ++i) ++members[pxb.find(static_cast<int>(i))];
  int nextBus = 1;
  auto busId = [](int dom, int bus, int dev) {
    char b[16];
    std::snprintf(b, sizeof b, "%04x:%02x:%02x.0", dom & 0xffff, bus & 0xff, dev & 0x1f);
    return std::string(b);
  };
  for (size_t i = 0; i < n; ++i) {
    int ii = static_cast<int>(i);
    int cpu = cpuOf[std::max(rows[i].numa, 0)];
    int hb = phb.find(ii);
    if (!hostBridge.count(hb)) hostBridge[hb] = static_cast<int>(hostBridge.size());
    int dom = hostBridge[hb];
    int parent = cpu;
    auto sw = [&](std::map<int, int>& m, int key) {
      if (!m.count(key)) {
        Node x;
        x.kind = NodeKind::kPciSwitch;
        x.parent = parent;
        x.pciClass = 0x060400;
        x.busId = busId(dom, parent == cpu ? 0 : nextBus, static_cast<int>(s.nodes[parent].children.size()));
        x.degraded = true;
        x.note = "inferred from nvidia-smi topo -m";
        m[key] = s.add(x);
        ++nextBus;
      }
      return m[key];
    };
    if (members[pxb.find(ii)] > 1) parent = sw(upper, pxb.find(ii));
    bool pixGroup = false;
    for (size_t j = 0; j < n; ++j) pixGroup = pixGroup || (j != i && pix.find(static_cast<int>(j)) == pix.find(ii));
    if (pixGroup || parent != cpu) parent = sw(leaf, pix.find(ii));
    Node d;
    d.parent = parent;
    d.numa = std::max(rows[i].numa, 0);
    d.busId = busId(dom, parent == cpu ? 0 : nextBus++, static_cast<int>(s.nodes[parent].children.size()));
    d.degraded = true;
    d.note = "from nvidia-smi topo -m (bus id made up)";
    if (rows[i].name.rfind("GPU", 0) == 0) {
      d.kind = NodeKind::kGpu;
      d.pciClass = 0x030200;
      d.vendor = 0x10de;
      d.gpuDev = std::atoi(rows[i].name.c_str() + 3);
    } else {
      d.kind = NodeKind::kNic;
      d.pciClass = 0x020700;
      NetPort p;
      p.name = nicNames.count(rows[i].name) ? nicNames[rows[i].name] : rows[i].name;
      d.ports.push_back(p);
    }
    s.add(d);
  }
  std::vector<int> devs;
  for (const Node& x : s.nodes)
    if (x.kind == NodeKind::kGpu || x.kind == NodeKind::kNic) devs.push_back(x.id);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      const std::string& c = rows[i].cells[j];
      if (i == j || c.size() < 3 || c.rfind("NV", 0) != 0 || !std::isdigit(static_cast<unsigned char>(c[2]))) continue;
      NvLink l;
      l.from = devs[i];
      l.to = devs[j];
      l.target = s.nodes[devs[j]].busId;
      l.count = std::atoi(c.c_str() + 2);
      l.targetClass = 0x030200;
      s.nvlinks.push_back(l);
    }
  return s;
}

}  // namespace trellis::topo
