#include "topo/hwloc_xml.h"

#include <cstdlib>
#include <map>
#include <pugixml.hpp>
#include <sstream>

namespace trellis::topo {

namespace {

int lineOf(const std::string& text, ptrdiff_t offset) {
  int line = 1;
  for (ptrdiff_t i = 0; i < offset && i < static_cast<ptrdiff_t>(text.size()); ++i) line += text[i] == '\n';
  return line;
}

// hwloc "0x00000303,,0x0" -> NCCL/sysfs "00000303,00000000,00000000".
std::string ncclMask(const std::string& set) {
  std::string out, w;
  std::istringstream in(set);
  while (std::getline(in, w, ',')) {
    char b[16];
    std::snprintf(b, sizeof b, "%08lx", std::strtoul(w.c_str(), nullptr, 16));
    out += (out.empty() ? "" : ",") + std::string(b);
  }
  return out;
}

bool startsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

int firstNuma(const pugi::xml_node& x) {
  for (pugi::xml_node c : x.children("object")) {
    if (std::string(c.attribute("type").as_string()) == "NUMANode") return c.attribute("os_index").as_int(-1);
    if (std::string(c.attribute("type").as_string()) == "Package") continue;  // another socket's
    int n = firstNuma(c);
    if (n >= 0) return n;
  }
  return -1;
}

struct Reader {
  const std::string& text;
  const std::string& origin;
  System sys;
  std::map<std::string, int> byRef;  // "PCIDev:703" / "OSDev:802" / "Package:3" -> node id
  pugi::xml_node machine;

  Status error(const pugi::xml_node& n, const std::string& what) {
    return invalidArgument("%s:%d: %s", origin.c_str(), lineOf(text, n.offset_debug()), what.c_str());
  }
  static std::string ref(const pugi::xml_node& o) {
    return std::string(o.attribute("type").as_string()) + ":" + o.attribute("gp_index").as_string();
  }

  int addCpu(const pugi::xml_node& o, int numa) {
    Node c;
    c.kind = NodeKind::kCpu;
    c.source = Source::kHwloc;
    c.numa = numa < 0 ? static_cast<int>(sys.ofKind(NodeKind::kCpu).size()) : numa;
    c.affinity = ncclMask(o.attribute("cpuset").as_string());
    c.arch = "";
    for (pugi::xml_node i : machine.children("info"))
      if (std::string(i.attribute("name").as_string()) == "Architecture") c.arch = i.attribute("value").as_string();
    if (numa < 0) {
      c.degraded = true;
      c.note = "no NUMA node in the hwloc file";
    }
    int id = sys.add(c);
    byRef[ref(o)] = id;
    return id;
  }

  void osDevice(const pugi::xml_node& o, Node& n) {
    std::string name = o.attribute("name").as_string();
    std::string guid;
    for (pugi::xml_node i : o.children("info"))
      if (std::string(i.attribute("name").as_string()) == "NodeGUID") guid = i.attribute("value").as_string();
    if (startsWith(name, "nvml") || startsWith(name, "cuda")) {
      if (n.gpuDev < 0) n.gpuDev = std::atoi(name.c_str() + 4);
      return;
    }
    if (!guid.empty() || startsWith(name, "mlx") || startsWith(name, "hfi") || startsWith(name, "qib") ||
        startsWith(name, "efa")) {
      NetPort p;
      p.name = name;
      p.guid = guid;
      n.ports.push_back(p);
      n.kind = NodeKind::kNic;
      return;
    }
    // A network interface: the netdev of the first RDMA port, else a port of its own.
    int osType = o.attribute("osdev_type").as_int(-1);
    bool net = osType == 2 || (osType > 5 && (osType & 16)) || startsWith(name, "eth") || startsWith(name, "ib") ||
               startsWith(name, "en");
    if (!net) return;
    for (NetPort& p : n.ports)
      if (p.netdev.empty()) {
        p.netdev = name;
        return;
      }
    NetPort p;
    p.name = p.netdev = name;
    n.ports.push_back(p);
    if (n.kind == NodeKind::kPciDevice) n.kind = NodeKind::kNic;
  }

  Status walk(const pugi::xml_node& x, int parent) {
    for (pugi::xml_node o : x.children("object")) {
      std::string type = o.attribute("type").as_string();
      if (type == "Package" || (type == "NUMANode" && parent < 0)) {
        TRELLIS_TRY(walk(o, addCpu(o, type == "NUMANode" ? o.attribute("os_index").as_int(-1) : firstNuma(o))));
      } else if (type == "Bridge" || type == "PCIDev") {
        if (parent < 0) parent = addCpu(machine, firstNuma(machine));  // I/O under the machine
        if (type == "Bridge" && o.attribute("pci_busid").empty()) {   // a host bridge: implied by bus ids
          TRELLIS_TRY(walk(o, parent));
          continue;
        }
        Node n;
        n.parent = parent;
        n.source = Source::kHwloc;
        n.busId = o.attribute("pci_busid").as_string();
        std::string pciType = o.attribute("pci_type").as_string();  // "0302 [10de:1db8] [10de:131d] a1 00"
        unsigned cls = 0, ven = 0, dev = 0;
        if (std::sscanf(pciType.c_str(), "%x [%x:%x]", &cls, &ven, &dev) != 3)
          return error(o, "PCI object " + n.busId + " has no readable pci_type ('" + pciType + "')");
        n.pciClass = cls << 8;
        n.vendor = ven;
        n.device = dev;
        n.linkGBps = o.attribute("pci_link_speed").as_double(0);
        if (type == "Bridge") {
          n.kind = NodeKind::kPciSwitch;
        } else if (std::string(o.attribute("subtype").as_string()) == "NVSwitch" || ((cls >> 8) == 0x06 && ven == 0x10de)) {
          n.kind = NodeKind::kNvSwitch;
          if (cls == 0) {  // seen in real dumps: subtype says NVSwitch, the PCI ids are zero
            n.pciClass = 0x068000;
            n.vendor = 0x10de;
            n.degraded = true;
            n.note = "PCI ids missing in file (NVSwitch by hwloc subtype)";
          }
        } else if (cls == 0x0302 || cls == 0x0300) {
          n.kind = ven == 0x10de ? NodeKind::kGpu : NodeKind::kPciDevice;
        } else if (cls == 0x0200 || cls == 0x0207) {
          n.kind = NodeKind::kNic;
        }
        if (n.linkGBps <= 0 && !n.degraded) {
          n.degraded = true;
          n.note = "PCIe link speed unknown";
        }
        for (pugi::xml_node c : o.children("object"))
          if (std::string(c.attribute("type").as_string()) == "OSDev") osDevice(c, n);
        int id = sys.add(n);
        byRef[ref(o)] = id;
        for (pugi::xml_node c : o.children("object"))
          if (std::string(c.attribute("type").as_string()) == "OSDev") byRef[ref(c)] = id;
        TRELLIS_TRY(walk(o, id));
      } else if (type != "OSDev") {
        TRELLIS_TRY(walk(o, parent));  // Machine, Group, caches, cores: look further down
      }
    }
    return Status::ok();
  }

  // NVLinkBandwidth: MB/s between GPUs (their OS devices), NVSwitches and CPUs (POWER NPUs).
  Status nvlinks(const pugi::xml_node& d) {
    int nb = d.attribute("nbobjs").as_int(0);
    std::vector<std::string> refs;
    std::vector<unsigned long long> vals;
    for (pugi::xml_node i : d.children("indexes")) {
      std::istringstream in(i.text().as_string());
      for (std::string r; in >> r;) refs.push_back(r);
    }
    for (pugi::xml_node v : d.children("u64values")) {
      std::istringstream in(v.text().as_string());
      for (unsigned long long x; in >> x;) vals.push_back(x);
    }
    if (nb <= 0 || static_cast<int>(refs.size()) != nb || vals.size() != static_cast<size_t>(nb) * nb)
      return error(d, "NVLinkBandwidth has " + std::to_string(refs.size()) + " objects and " +
                          std::to_string(vals.size()) + " values for nbobjs=" + std::to_string(nb));
    // Per-link rate: hwloc writes links x (20000 | 25000 | 50000) MB/s; pick the one that divides all.
    unsigned long long perLink = 0;
    for (unsigned long long rate : {25000ull, 20000ull, 50000ull}) {
      bool all = true;
      for (int i = 0; i < nb; ++i)
        for (int j = 0; j < nb; ++j)
          if (i != j && vals[i * nb + j] % rate) all = false;
      if (all) {
        perLink = rate;
        break;
      }
    }
    for (int i = 0; i < nb; ++i) {
      auto from = byRef.find(refs[i]);
      if (from == byRef.end() || sys.nodes[from->second].kind != NodeKind::kGpu) continue;
      for (int j = 0; j < nb; ++j) {
        unsigned long long bw = vals[i * nb + j];
        auto to = byRef.find(refs[j]);
        if (i == j || bw == 0 || to == byRef.end()) continue;
        NvLink l;
        l.from = from->second;
        l.to = to->second;
        l.source = Source::kHwloc;
        const Node& peer = sys.nodes[l.to];
        l.target = peer.busId;
        l.targetClass = peer.pciClass;
        l.count = perLink ? static_cast<int>(bw / perLink) : 1;
        l.gbpsPerLink = static_cast<double>(perLink ? perLink : bw) / 1000.0;
        l.version = perLink == 20000 ? 1 : perLink == 50000 ? 5 : 0;
        sys.nvlinks.push_back(l);
      }
    }
    return Status::ok();
  }
};

}  // namespace

std::string cpuListFromHwlocSet(const std::string& set) {
  std::vector<int> cpus;
  std::vector<std::string> words;
  std::string w;
  std::istringstream in(set);
  while (std::getline(in, w, ',')) words.push_back(w);
  int base = 0;
  for (size_t k = words.size(); k-- > 0; base += 32) {
    unsigned long v = std::strtoul(words[k].c_str(), nullptr, 16);
    for (int b = 0; b < 32; ++b)
      if (v & (1ul << b)) cpus.push_back(base + b);
  }
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(cpus[i]) + (j > i ? "-" + std::to_string(cpus[j]) : "");
    i = j + 1;
  }
  return out;
}

Result<System> fromHwlocXml(const std::string& text, const std::string& origin) {
  pugi::xml_document doc;
  pugi::xml_parse_result r = doc.load_buffer(text.data(), text.size());
  if (!r) return invalidArgument("%s:%d: XML error: %s", origin.c_str(), lineOf(text, r.offset), r.description());
  pugi::xml_node root = doc.child("topology");
  if (!root) return invalidArgument("%s: no <topology> element (not an hwloc XML file)", origin.c_str());
  Reader rd{text, origin, {}, {}, root.child("object")};
  if (!rd.machine) return invalidArgument("%s:%d: <topology> has no root object", origin.c_str(), lineOf(text, root.offset_debug()));
  rd.sys.source = Source::kHwloc;
  for (pugi::xml_node i : rd.machine.children("info"))
    if (std::string(i.attribute("name").as_string()) == "HostName") rd.sys.hostname = i.attribute("value").as_string();
  TRELLIS_TRY(rd.walk(root, -1));
  if (rd.sys.ofKind(NodeKind::kCpu).empty()) rd.addCpu(rd.machine, firstNuma(rd.machine));
  for (pugi::xml_node d : root.children("distances2hetero"))
    if (std::string(d.attribute("name").as_string()) == "NVLinkBandwidth") TRELLIS_TRY(rd.nvlinks(d));
  return rd.sys;
}

}  // namespace trellis::topo
