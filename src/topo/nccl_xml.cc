#include "topo/nccl_xml.h"

#include <cstdlib>
#include <pugixml.hpp>
#include <sstream>

namespace trellis::topo {

namespace {

int lineOf(const std::string& text, ptrdiff_t offset) {
  int line = 1;
  for (ptrdiff_t i = 0; i < offset && i < static_cast<ptrdiff_t>(text.size()); ++i) line += text[i] == '\n';
  return line;
}

uint32_t hexAttr(const pugi::xml_node& n, const char* name) {
  return static_cast<uint32_t>(std::strtoul(n.attribute(name).as_string("0"), nullptr, 16));
}

NodeKind kindOfClass(uint32_t cls, uint32_t vendor) {
  uint32_t base = cls >> 8;  // 0xCCSS
  if (base == 0x0604) return NodeKind::kPciSwitch;
  if (base == 0x0302 || base == 0x0300) return NodeKind::kGpu;
  if (base == 0x0200 || base == 0x0207) return NodeKind::kNic;
  if (base == 0x0680 && vendor == 0x10de) return NodeKind::kNvSwitch;
  return NodeKind::kPciDevice;
}

struct Reader {
  const std::string& text;
  const std::string& origin;
  System sys;
  int netIndex = 0;

  Status error(const pugi::xml_node& n, const std::string& what) {
    return invalidArgument("%s:%d: %s", origin.c_str(), lineOf(text, n.offset_debug()), what.c_str());
  }

  void addNets(const pugi::xml_node& nic, Node& target) {
    for (pugi::xml_node net : nic.children("net")) {
      NetPort p;
      p.name = net.attribute("name").as_string();
      p.dev = net.attribute("dev").as_int(netIndex);
      p.port = net.attribute("port").as_int(1);
      p.speedMbps = net.attribute("speed").as_llong(0);
      p.guid = net.attribute("guid").as_string();
      target.ports.push_back(p);
      ++netIndex;
    }
  }

  Status walk(const pugi::xml_node& x, int parent) {
    for (pugi::xml_node c : x.children()) {
      if (c.type() != pugi::node_element) continue;
      std::string tag = c.name();
      if (tag == "cpu") {
        Node n;
        n.kind = NodeKind::kCpu;
        n.parent = parent;
        n.numa = c.attribute("numaid").as_int(-1);
        if (n.numa < 0) return error(c, "<cpu> without a numaid");
        n.affinity = c.attribute("affinity").as_string();
        n.arch = c.attribute("arch").as_string();
        n.cpuVendor = c.attribute("vendor").as_string();
        n.family = c.attribute("familyid").as_int(-1);
        n.model = c.attribute("modelid").as_int(-1);
        if (n.arch.empty()) {
          n.degraded = true;
          n.note = "no arch attribute (NCCL requires it)";
        }
        int id = sys.add(n);
        TRELLIS_TRY(walk(c, id));
      } else if (tag == "pci") {
        if (parent < 0) return error(c, "<pci> outside a <cpu>");
        Node n;
        n.parent = parent;
        n.busId = c.attribute("busid").as_string();
        if (n.busId.empty()) return error(c, "<pci> without a busid");
        n.pciClass = hexAttr(c, "class");
        n.vendor = hexAttr(c, "vendor");
        n.device = hexAttr(c, "device");
        n.linkSpeed = c.attribute("link_speed").as_string();
        n.linkWidth = c.attribute("link_width").as_int(0);
        n.kind = kindOfClass(n.pciClass, n.vendor);
        if (c.attribute("class").empty()) {
          // Some published files omit classes: a node with PCI children is a bridge; a leaf is unknown.
          n.kind = c.child("pci") ? NodeKind::kPciSwitch : NodeKind::kPciDevice;
          n.degraded = true;
          n.note = c.child("pci") ? "class missing in file (a bridge: it has PCI children)" : "class missing in file";
        }
        if (n.kind == NodeKind::kGpu && !c.child("gpu")) {
          n.degraded = true;
          n.note = "GPU known by PCI class only (no <gpu> details)";
        }
        int id = sys.add(n);
        TRELLIS_TRY(walk(c, id));
      } else if (tag == "gpu") {
        if (parent < 0) return error(c, "<gpu> outside a <pci>");
        Node& g = sys.nodes[parent];
        g.kind = NodeKind::kGpu;
        g.gpuDev = c.attribute("dev").as_int(-1);
        g.sm = c.attribute("sm").as_int(-1);
        for (pugi::xml_node l : c.children("nvlink")) {
          NvLink link;
          link.from = parent;
          link.target = l.attribute("target").as_string();
          link.count = l.attribute("count").as_int(0);
          link.targetClass = hexAttr(l, "tclass");
          link.version = nvlinkVersionOfSm(g.sm);
          link.gbpsPerLink = nvlinkGBpsPerLink(link.version);
          if (link.target.empty() || link.count <= 0) return error(l, "<nvlink> needs a target and a positive count");
          sys.nvlinks.push_back(link);
        }
        for (pugi::xml_node l : c.children("c2c")) {  // Grace-Hopper: bw is per link, GB/s
          NvLink link;
          link.from = parent;
          link.kind = LinkKind::kC2C;
          link.count = l.attribute("count").as_int(0);
          link.gbpsPerLink = l.attribute("bw").as_double(0);
          for (int p = parent; p >= 0; p = sys.nodes[p].parent) link.to = p;  // the CPU root
          if (link.count <= 0) return error(l, "<c2c> needs a positive count");
          sys.nvlinks.push_back(link);
        }
      } else if (tag == "nic") {
        if (parent < 0) return error(c, "<nic> outside a <cpu> or <pci>");
        if (sys.nodes[parent].kind == NodeKind::kCpu || sys.nodes[parent].kind == NodeKind::kPciSwitch) {
          Node n;  // a NIC without its own PCI node
          n.kind = NodeKind::kNic;
          n.parent = parent;
          int id = sys.add(n);
          addNets(c, sys.nodes[id]);
        } else {
          sys.nodes[parent].kind = NodeKind::kNic;
          addNets(c, sys.nodes[parent]);
        }
      } else if (tag == "nvlink" || tag == "net") {
        return error(c, "<" + tag + "> outside its parent element");
      }
      // Other elements (c2c, pcilink...) carry nothing we use yet.
    }
    return Status::ok();
  }
};

}  // namespace

Result<System> fromNcclXml(const std::string& text, const std::string& origin) {
  pugi::xml_document doc;
  pugi::xml_parse_result r = doc.load_buffer(text.data(), text.size());
  if (!r) return invalidArgument("%s:%d: XML error: %s", origin.c_str(), lineOf(text, r.offset), r.description());
  pugi::xml_node root = doc.child("system");
  if (!root) return invalidArgument("%s: no <system> element (not an NCCL topology file)", origin.c_str());
  int version = root.attribute("version").as_int(-1);
  if (version != 1)
    return invalidArgument("%s:%d: <system version=\"%d\"> is not supported (NCCL topology version 1)", origin.c_str(),
                           lineOf(text, root.offset_debug()), version);
  Reader rd{text, origin, {}, 0};
  rd.sys.source = Source::kFile;
  TRELLIS_TRY(rd.walk(root, -1));
  if (rd.sys.ofKind(NodeKind::kCpu).empty()) return invalidArgument("%s: no <cpu> element", origin.c_str());
  rd.sys.resolveNvLinks();
  return rd.sys;
}

namespace {
std::string hex(uint32_t v, int digits) {
  char b[16];
  snprintf(b, sizeof b, "0x%0*x", digits, v);
  return b;
}

void writeNode(const System& s, const Node& n, pugi::xml_node parent) {
  if (n.kind == NodeKind::kNvSwitch && n.parent < 0) return;  // link-target-only switches
  pugi::xml_node e;
  if (n.kind == NodeKind::kCpu) {
    e = parent.append_child("cpu");
    e.append_attribute("numaid") = n.numa;
    if (!n.affinity.empty()) e.append_attribute("affinity") = n.affinity.c_str();
    e.append_attribute("arch") = n.arch.empty() ? "x86_64" : n.arch.c_str();
    if (!n.cpuVendor.empty()) e.append_attribute("vendor") = n.cpuVendor.c_str();
    if (n.family >= 0) e.append_attribute("familyid") = n.family;
    if (n.model >= 0) e.append_attribute("modelid") = n.model;
  } else if (!n.busId.empty()) {
    e = parent.append_child("pci");
    e.append_attribute("busid") = n.busId.c_str();
    // A class the source did not give is written from the kind we inferred (bridge, NVSwitch),
    // or left out so the reader marks it unknown again.
    uint32_t cls = n.pciClass ? n.pciClass
                   : n.kind == NodeKind::kPciSwitch ? 0x060400u
                   : n.kind == NodeKind::kNvSwitch  ? 0x068000u
                   : n.kind == NodeKind::kGpu       ? 0x030200u
                   : n.kind == NodeKind::kNic       ? 0x020000u
                                                    : 0u;
    if (cls) e.append_attribute("class") = hex(cls, 6).c_str();
    if (n.vendor) e.append_attribute("vendor") = hex(n.vendor, 4).c_str();
    if (n.device) e.append_attribute("device") = hex(n.device, 4).c_str();
    if (!n.linkSpeed.empty()) e.append_attribute("link_speed") = n.linkSpeed.c_str();
    if (n.linkWidth) e.append_attribute("link_width") = n.linkWidth;
  } else {
    e = parent;  // a NIC without PCI node: its <nic> goes under the parent
  }
  if (n.kind == NodeKind::kGpu && (n.gpuDev >= 0 || n.sm >= 0)) {
    pugi::xml_node g = e.append_child("gpu");
    g.append_attribute("dev") = n.gpuDev;
    g.append_attribute("sm") = n.sm;
    for (const NvLink& l : s.nvlinks) {
      if (l.from != n.id) continue;
      if (l.kind == LinkKind::kC2C) {
        pugi::xml_node x = g.append_child("c2c");
        x.append_attribute("bw") = l.gbpsPerLink;
        x.append_attribute("count") = l.count;
        continue;
      }
      if (l.target.empty()) continue;  // a CPU peer (POWER NPU) has no bus id NCCL could use
      pugi::xml_node x = g.append_child("nvlink");
      x.append_attribute("target") = l.target.c_str();
      x.append_attribute("count") = l.count;
      x.append_attribute("tclass") = hex(l.targetClass, 6).c_str();
    }
  }
  if (n.kind == NodeKind::kNic && !n.ports.empty()) {
    pugi::xml_node nic = e.append_child("nic");
    for (const NetPort& p : n.ports) {
      pugi::xml_node net = nic.append_child("net");
      net.append_attribute("name") = p.name.c_str();
      net.append_attribute("dev") = p.dev;
      if (p.speedMbps) net.append_attribute("speed") = static_cast<long long>(p.speedMbps);
      net.append_attribute("port") = p.port;
      if (!p.guid.empty()) net.append_attribute("guid") = p.guid.c_str();
    }
  }
  for (int c : n.children) writeNode(s, s.nodes[c], e);
}
}  // namespace

std::string toNcclXml(const System& s) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("system");
  root.append_attribute("version") = 1;
  for (const Node& n : s.nodes)
    if (n.parent < 0 && n.kind == NodeKind::kCpu) writeNode(s, n, root);
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration);
  return out.str();
}

}  // namespace trellis::topo
