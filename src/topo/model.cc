#include "topo/model.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace trellis::topo {

const char* nodeKindName(NodeKind k) {
  switch (k) {
    case NodeKind::kCpu: return "cpu";
    case NodeKind::kPciSwitch: return "pci-switch";
    case NodeKind::kGpu: return "gpu";
    case NodeKind::kNic: return "nic";
    case NodeKind::kNvSwitch: return "nvswitch";
    case NodeKind::kPciDevice: return "pci";
  }
  return "?";
}

const char* sourceName(Source s) {
  switch (s) {
    case Source::kSysfs: return "sysfs";
    case Source::kNvml: return "nvml";
    case Source::kHwloc: return "hwloc";
    case Source::kFile: return "file";
    case Source::kIbnetdiscover: return "ibnetdiscover";
    case Source::kOverride: return "override";
  }
  return "?";
}

const char* linkKindName(LinkKind k) {
  switch (k) {
    case LinkKind::kPcie: return "pcie";
    case LinkKind::kNvLink: return "nvlink";
    case LinkKind::kC2C: return "c2c";
    case LinkKind::kSmp: return "smp";
    case LinkKind::kNetwork: return "network";
  }
  return "?";
}

int pcieGen(const std::string& speed) {
  double gts = std::strtod(speed.c_str(), nullptr);
  if (gts <= 0) return 0;
  int gen = 1;
  for (double g = 2.5; g * 1.5 < gts; g *= 2) ++gen;  // 2.5, 5, 8, 16, 32, 64 GT/s
  return gen;
}

int nvlinkVersionOfSm(int sm) {
  if (sm >= 100) return 5;
  if (sm >= 90) return 4;
  if (sm >= 80) return 3;
  if (sm >= 70) return 2;
  if (sm >= 60) return 1;
  return 0;
}

double nvlinkGBpsPerLink(int version) {
  switch (version) {
    case 1: return 20;
    case 2: case 3: case 4: return 25;
    case 5: case 6: return 50;
    default: return 0;
  }
}

double upstreamGBps(const Node& n) { return n.linkGBps > 0 ? n.linkGBps : pcieGBps(n.linkSpeed, n.linkWidth); }

std::vector<Link> links(const System& s) {
  std::vector<Link> out;
  std::vector<int> roots;
  for (const Node& n : s.nodes) {
    if (n.parent < 0) {
      if (n.kind == NodeKind::kCpu) roots.push_back(n.id);
    } else {
      Link l;
      l.from = n.id;
      l.to = n.parent;
      l.source = n.source;
      l.gen = pcieGen(n.linkSpeed);
      l.width = n.linkWidth;
      l.gbps = upstreamGBps(n);
      l.degraded = l.gbps <= 0;
      out.push_back(l);
    }
    for (const NetPort& p : n.ports) {
      Link l;
      l.from = n.id;
      l.kind = LinkKind::kNetwork;
      l.source = n.source;
      l.gbps = static_cast<double>(p.speedMbps) / 8000.0;
      l.degraded = p.speedMbps <= 0;
      l.port = p.name;
      out.push_back(l);
    }
  }
  for (const NvLink& nv : s.nvlinks) {
    Link l;
    l.from = nv.from;
    l.to = nv.to;
    l.kind = nv.kind;
    l.source = nv.source;
    l.version = nv.version;
    l.count = nv.count;
    l.gbps = nv.gbpsPerLink * nv.count;
    l.degraded = nv.to < 0 || nv.gbpsPerLink <= 0;
    out.push_back(l);
  }
  // Sockets talk over UPI/xGMI; no source reports its bandwidth, so it is marked unknown.
  for (size_t i = 0; i < roots.size(); ++i)
    for (size_t j = i + 1; j < roots.size(); ++j) {
      Link l;
      l.from = roots[i];
      l.to = roots[j];
      l.kind = LinkKind::kSmp;
      l.source = s.nodes[roots[i]].source;
      l.degraded = true;
      out.push_back(l);
    }
  return out;
}

int System::add(Node n) {
  n.id = static_cast<int>(nodes.size());
  if (n.parent >= 0) {
    nodes[n.parent].children.push_back(n.id);
    if (n.numa < 0) n.numa = nodes[n.parent].numa;
  }
  nodes.push_back(std::move(n));
  return nodes.back().id;
}

std::vector<int> System::ofKind(NodeKind k) const {
  std::vector<int> out;
  for (const Node& n : nodes)
    if (n.kind == k) out.push_back(n.id);
  return out;
}

static std::string normBus(std::string b) {
  std::transform(b.begin(), b.end(), b.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (b.size() == 7) b = "0000:" + b;  // "10:1c.0" -> "0000:10:1c.0"
  // NVML and CUDA write an 8-digit domain ("00000000:34:00.0"); the model keeps 4.
  size_t colon = b.find(':');
  if (colon > 4 && colon != std::string::npos && b.compare(0, colon - 4, std::string(colon - 4, '0')) == 0)
    b = b.substr(colon - 4);
  return b;
}

int System::findBusId(const std::string& busId) const {
  std::string want = normBus(busId);
  for (const Node& n : nodes)
    if (!n.busId.empty() && normBus(n.busId) == want) return n.id;
  return -1;
}

void System::resolveNvLinks() {
  for (NvLink& l : nvlinks) {
    l.to = findBusId(l.target);
    if (l.to < 0 && l.targetClass == 0x068000) {  // an NVSwitch seen only as a link target
      Node sw;
      sw.kind = NodeKind::kNvSwitch;
      sw.busId = normBus(l.target);
      sw.source = nodes[l.from].source;
      sw.note = "known only as an NVLink target";
      l.to = add(sw);
    } else if (l.to >= 0 && nodes[l.to].kind == NodeKind::kPciDevice && l.targetClass == 0x068000) {
      nodes[l.to].kind = NodeKind::kNvSwitch;
    }
  }
}

double pcieGBps(const std::string& speed, int width) {
  double gts = std::strtod(speed.c_str(), nullptr);
  if (gts <= 0 || width <= 0) return 0;
  // 2.5 and 5 GT/s use 8b/10b encoding, 8 GT/s and up 128b/130b.
  double eff = gts < 8 ? 0.8 : 128.0 / 130.0;
  return gts * eff * width / 8.0;
}

using nlohmann::json;

std::string toJson(const System& s) {
  json j;
  j["format"] = "trellis-topology";
  j["version"] = 1;
  j["hostname"] = s.hostname;
  j["source"] = sourceName(s.source);
  json nodes = json::array();
  for (const Node& n : s.nodes) {
    json o = {{"id", n.id}, {"kind", nodeKindName(n.kind)}, {"parent", n.parent}, {"source", sourceName(n.source)},
              {"numa", n.numa}};
    if (n.degraded) o["degraded"] = true;
    if (!n.note.empty()) o["note"] = n.note;
    if (!n.busId.empty()) o["busid"] = n.busId;
    if (n.pciClass) o["class"] = n.pciClass;
    if (n.vendor) o["vendor"] = n.vendor;
    if (n.device) o["device"] = n.device;
    if (!n.linkSpeed.empty()) o["link_speed"] = n.linkSpeed;
    if (n.linkWidth) o["link_width"] = n.linkWidth;
    if (n.linkGBps > 0) o["link_gbps"] = n.linkGBps;
    if (n.kind == NodeKind::kCpu) {
      o["affinity"] = n.affinity;
      o["arch"] = n.arch;
      o["cpu_vendor"] = n.cpuVendor;
      o["family"] = n.family;
      o["model"] = n.model;
      if (n.cores) o["cores"] = n.cores;
      if (n.pus) o["pus"] = n.pus;
      if (!n.cpuModel.empty()) o["cpu_model"] = n.cpuModel;
    }
    if (n.kind == NodeKind::kGpu) {
      o["dev"] = n.gpuDev;
      o["sm"] = n.sm;
    }
    if (!n.ports.empty()) {
      json ports = json::array();
      for (const NetPort& p : n.ports)
        ports.push_back({{"name", p.name}, {"dev", p.dev}, {"port", p.port}, {"speed_mbps", p.speedMbps},
                         {"guid", p.guid}, {"link_layer", p.linkLayer}, {"netdev", p.netdev}, {"state", p.state}});
      o["ports"] = ports;
    }
    nodes.push_back(o);
  }
  j["nodes"] = nodes;
  json links = json::array();
  for (const NvLink& l : s.nvlinks) {
    json o = {{"from", l.from}, {"target", l.target}, {"to", l.to}, {"count", l.count}, {"tclass", l.targetClass},
              {"kind", linkKindName(l.kind)}, {"source", sourceName(l.source)}};
    if (l.version) o["version"] = l.version;
    if (l.gbpsPerLink > 0) o["gbps_per_link"] = l.gbpsPerLink;
    links.push_back(o);
  }
  j["nvlinks"] = links;
  // Derived, for readers that want every edge in one list; ignored when reading.
  json edges = json::array();
  for (const Link& l : topo::links(s)) {
    json o = {{"from", l.from}, {"to", l.to}, {"kind", linkKindName(l.kind)}, {"source", sourceName(l.source)}};
    if (l.gen) o["gen"] = l.gen;
    if (l.width) o["width"] = l.width;
    if (l.version) o["version"] = l.version;
    if (l.count) o["count"] = l.count;
    o["gbps"] = l.gbps;
    if (l.degraded) o["degraded"] = true;
    if (!l.port.empty()) o["port"] = l.port;
    edges.push_back(o);
  }
  j["links"] = edges;
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);  // names may be invalid UTF-8
}

static Source sourceFromName(const std::string& s) {
  for (Source x : {Source::kSysfs, Source::kNvml, Source::kHwloc, Source::kFile, Source::kIbnetdiscover, Source::kOverride})
    if (s == sourceName(x)) return x;
  return Source::kFile;
}

static NodeKind kindFromName(const std::string& s, bool* ok) {
  for (NodeKind k : {NodeKind::kCpu, NodeKind::kPciSwitch, NodeKind::kGpu, NodeKind::kNic, NodeKind::kNvSwitch,
                     NodeKind::kPciDevice})
    if (s == nodeKindName(k)) return k;
  *ok = false;
  return NodeKind::kPciDevice;
}

Result<System> fromJson(const std::string& text, const std::string& origin) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return invalidArgument("%s: not valid JSON", origin.c_str());
  try {
    if (j.value("format", "") != "trellis-topology")
      return invalidArgument("%s: not a Trellis topology (\"format\" is not \"trellis-topology\")", origin.c_str());
    if (j.value("version", 0) != 1)
      return invalidArgument("%s: topology version %d is not supported (1)", origin.c_str(), j.value("version", 0));
    System s;
    s.hostname = j.value("hostname", "");
    s.source = sourceFromName(j.value("source", "file"));
    const json& nodes = j.at("nodes");
    for (size_t i = 0; i < nodes.size(); ++i) {
      const json& o = nodes[i];
      Node n;
      bool ok = true;
      n.kind = kindFromName(o.at("kind").get<std::string>(), &ok);
      if (!ok) return invalidArgument("%s: node %zu has unknown kind '%s'", origin.c_str(), i, o.at("kind").get<std::string>().c_str());
      n.parent = o.value("parent", -1);
      if (n.parent >= static_cast<int>(i) || n.parent < -1)
        return invalidArgument("%s: node %zu has parent %d (must be an earlier node or -1)", origin.c_str(), i, n.parent);
      n.source = sourceFromName(o.value("source", "file"));
      n.numa = o.value("numa", -1);
      n.degraded = o.value("degraded", false);
      n.note = o.value("note", "");
      n.busId = o.value("busid", "");
      n.pciClass = o.value("class", 0u);
      n.vendor = o.value("vendor", 0u);
      n.device = o.value("device", 0u);
      n.linkSpeed = o.value("link_speed", "");
      n.linkWidth = o.value("link_width", 0);
      n.linkGBps = o.value("link_gbps", 0.0);
      n.affinity = o.value("affinity", "");
      n.arch = o.value("arch", "");
      n.cpuVendor = o.value("cpu_vendor", "");
      n.family = o.value("family", -1);
      n.model = o.value("model", -1);
      n.cores = o.value("cores", 0);
      n.pus = o.value("pus", 0);
      n.cpuModel = o.value("cpu_model", "");
      n.gpuDev = o.value("dev", -1);
      n.sm = o.value("sm", -1);
      if (o.contains("ports"))
        for (const json& p : o["ports"])
          n.ports.push_back({p.value("name", ""), p.value("dev", -1), p.value("port", 1), p.value("speed_mbps", int64_t{0}),
                             p.value("guid", ""), p.value("link_layer", ""), p.value("netdev", ""), p.value("state", "")});
      int numa = n.numa;
      s.add(n);
      s.nodes.back().numa = numa;
    }
    if (j.contains("nvlinks"))
      for (const json& l : j["nvlinks"]) {
        NvLink x;
        x.from = l.value("from", -1);
        x.target = l.value("target", "");
        x.to = l.value("to", -1);
        x.count = l.value("count", 0);
        x.targetClass = l.value("tclass", 0u);
        x.kind = l.value("kind", "nvlink") == "c2c" ? LinkKind::kC2C : LinkKind::kNvLink;
        x.source = sourceFromName(l.value("source", "file"));
        x.version = l.value("version", 0);
        x.gbpsPerLink = l.value("gbps_per_link", 0.0);
        if (x.from < 0 || x.from >= static_cast<int>(s.nodes.size()) || x.to >= static_cast<int>(s.nodes.size()))
          return invalidArgument("%s: nvlink refers to node %d/%d out of range", origin.c_str(), x.from, x.to);
        s.nvlinks.push_back(x);
      }
    return s;
  } catch (const json::exception& e) {
    return invalidArgument("%s: %s", origin.c_str(), e.what());
  }
}

}  // namespace trellis::topo
