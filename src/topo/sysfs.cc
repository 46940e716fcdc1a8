#include "topo/sysfs.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/log.h"
#include "core/params.h"
#include "topo/hwloc_local.h"
#include "topo/hwloc_xml.h"
#include "topo/cuda_devices.h"
#include "topo/nvml.h"
#include "topo/smi_matrix.h"
#include "topo/nccl_xml.h"

namespace fs = std::filesystem;

namespace trellis::topo {

static Param<std::string> kSysfsRoot("TRELLIS_SYSFS_ROOT", "",
                                     "read sysfs below this directory instead of / (replay another machine)");
static Param<std::string> kTopoFile("TRELLIS_TOPO_FILE", "",
                                    "use this topology file (Trellis JSON or NCCL XML) instead of detection");

namespace {

std::string readLine(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

uint32_t readHex(const fs::path& p) { return static_cast<uint32_t>(std::strtoul(readLine(p).c_str(), nullptr, 16)); }

bool isBdf(const std::string& s) {
  // dddd:bb:dd.f
  return s.size() == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.';
}

NodeKind classify(uint32_t cls, uint32_t vendor) {
  uint32_t base = cls >> 8;
  if (base == 0x0604) return NodeKind::kPciSwitch;
  if ((base == 0x0302 || base == 0x0300) && vendor == 0x10de) return NodeKind::kGpu;
  if (base == 0x0200 || base == 0x0207) return NodeKind::kNic;
  if (base == 0x0680 && vendor == 0x10de) return NodeKind::kNvSwitch;
  return NodeKind::kPciDevice;
}

void addPorts(const fs::path& dev, Node& n) {
  std::error_code ec;
  // Network interfaces, directly or under a virtio child.
  std::vector<fs::path> netDirs = {dev / "net"};
  for (const auto& e : fs::directory_iterator(dev, ec))
    if (e.path().filename().string().rfind("virtio", 0) == 0) netDirs.push_back(e.path() / "net");
  for (const fs::path& nd : netDirs)
    for (const auto& e : fs::directory_iterator(nd, ec)) {
      NetPort p;
      p.name = p.netdev = e.path().filename().string();
      std::string speed = readLine(e.path() / "speed");
      p.speedMbps = std::atoll(speed.c_str()) > 0 ? std::atoll(speed.c_str()) : 0;
      p.state = readLine(e.path() / "operstate");
      p.linkLayer = "Ethernet";
      n.ports.push_back(p);
    }
  for (const auto& ib : fs::directory_iterator(dev / "infiniband", ec)) {
    std::string guid = readLine(ib.path() / "node_guid");
    std::error_code ec2;
    for (const auto& port : fs::directory_iterator(ib.path() / "ports", ec2)) {
      NetPort p;
      p.name = ib.path().filename().string();
      p.port = std::atoi(port.path().filename().string().c_str());
      p.guid = guid;
      p.linkLayer = readLine(port.path() / "link_layer");
      p.state = readLine(port.path() / "state");
      // "100 Gb/sec (4X EDR)"
      p.speedMbps = static_cast<int64_t>(std::atof(readLine(port.path() / "rate").c_str()) * 1000);
      n.ports.push_back(p);
    }
  }
}

}  // namespace

Result<System> detectFromSysfs(const std::string& rootIn) {
  const fs::path root = rootIn.empty() ? fs::path("/") : fs::path(rootIn);
  System sys;
  sys.source = Source::kSysfs;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  sys.hostname = rootIn.empty() ? host : root.filename().string();
  utsname u{};
  uname(&u);
  std::error_code ec;
  // NUMA nodes -> CPU nodes.
  std::vector<std::pair<int, std::string>> numas;
  for (const auto& e : fs::directory_iterator(root / "sys/devices/system/node", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("node", 0) == 0 && n.size() > 4 && std::isdigit(static_cast<unsigned char>(n[4])))
      numas.emplace_back(std::atoi(n.c_str() + 4), readLine(e.path() / "cpumap"));
  }
  std::sort(numas.begin(), numas.end());
  if (numas.empty()) numas.emplace_back(0, "");
  std::map<int, int> cpuOfNuma;
  for (auto& [id, map] : numas) {
    Node c;
    c.kind = NodeKind::kCpu;
    c.numa = id;
    c.affinity = map;
    c.arch = u.machine;
    c.source = Source::kSysfs;
    if (map.empty()) {
      c.degraded = true;
      c.note = "no NUMA information in sysfs";
    }
    cpuOfNuma[id] = sys.add(c);
  }
  // PCI devices with the chain of bridges above them.
  struct Dev {
    std::string bdf;
    std::vector<std::string> chain;  // ancestors' BDFs, top first
    fs::path dir;
  };
  std::vector<Dev> devs;
  const fs::path pciDevices = root / "sys/bus/pci/devices";
  for (const auto& e : fs::directory_iterator(pciDevices, ec)) {
    fs::path real = fs::canonical(e.path(), ec);
    if (ec) {
      ec.clear();
      continue;
    }
    Dev d;
    d.bdf = e.path().filename().string();
    d.dir = real;
    for (const auto& part : real) {
      std::string s = part.string();
      if (isBdf(s) && s != d.bdf) d.chain.push_back(s);
    }
    devs.push_back(d);
  }
  if (devs.empty() && !rootIn.empty() && !fs::exists(pciDevices))
    return invalidArgument("%s has no sys/bus/pci/devices: not a sysfs tree", root.c_str());
  // Keep GPUs, NICs, NVSwitches and the bridges above them.
  std::map<std::string, const Dev*> byBdf;
  for (const Dev& d : devs) byBdf[d.bdf] = &d;
  std::map<std::string, bool> keep;
  for (const Dev& d : devs) {
    NodeKind k = classify(readHex(d.dir / "class"), readHex(d.dir / "vendor"));
    if (k == NodeKind::kGpu || k == NodeKind::kNic || k == NodeKind::kNvSwitch) {
      keep[d.bdf] = true;
      for (const std::string& a : d.chain) keep[a] = true;
    }
  }
  std::vector<const Dev*> order;
  for (const Dev& d : devs)
    if (keep.count(d.bdf)) order.push_back(&d);
  std::sort(order.begin(), order.end(), [](const Dev* a, const Dev* b) {
    return a->chain.size() != b->chain.size() ? a->chain.size() < b->chain.size() : a->bdf < b->bdf;
  });
  std::map<std::string, int> idOf;
  for (const Dev* d : order) {
    Node n;
    n.busId = d->bdf;
    n.source = Source::kSysfs;
    n.pciClass = readHex(d->dir / "class");
    n.vendor = readHex(d->dir / "vendor");
    n.device = readHex(d->dir / "device");
    n.kind = classify(n.pciClass, n.vendor);
    n.linkSpeed = readLine(d->dir / "current_link_speed");
    std::string w = readLine(d->dir / "current_link_width");
    n.linkWidth = std::atoi(w.c_str());
    if (n.linkSpeed.empty() || n.linkSpeed.find("Unknown") != std::string::npos) {
      n.linkSpeed.clear();
      n.degraded = true;
      n.note = "PCIe link speed unknown";
    }
    std::string numaText = readLine(d->dir / "numa_node");
    int numa = numaText.empty() ? -1 : std::atoi(numaText.c_str());
    if (!d->chain.empty() && idOf.count(d->chain.back())) {
      n.parent = idOf[d->chain.back()];
    } else {
      auto it = cpuOfNuma.find(numa < 0 ? numas.front().first : numa);
      n.parent = it != cpuOfNuma.end() ? it->second : cpuOfNuma.begin()->second;
    }
    if (n.kind == NodeKind::kNic) addPorts(d->dir, n);
    idOf[d->bdf] = sys.add(n);
  }
  return sys;
}

Result<System> loadTopologyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalidArgument("cannot open topology file '%s'", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return invalidArgument("%s: empty file", path.c_str());
  if (text[first] == '{') return fromJson(text, path);
  if (text[first] == '<') {
    // hwloc files have a <topology> root; NCCL files a <system> root.
    if (text.find("<topology", first) != std::string::npos && text.find("<system") == std::string::npos)
      return fromHwlocXml(text, path);
    return fromNcclXml(text, path);
  }
  if (looksLikeSmiMatrix(text)) return fromSmiMatrix(text, path);
  return invalidArgument("%s:1: not a topology file (Trellis JSON, NCCL XML, hwloc XML or nvidia-smi topo -m)",
                         path.c_str());
}

static Param<std::string> kTopoDumpFile("TRELLIS_TOPO_DUMP_FILE", "",
                                        "write the detected topology here (NCCL XML when the name ends in .xml, "
                                        "else Trellis JSON; %h is replaced by the host name)");

// Writes atomically (temporary file + rename): several ranks of one host may dump at once.
static void dumpDetected(const System& s) {
  std::string path = kTopoDumpFile.get();
  if (path.empty()) return;
  for (size_t at; (at = path.find("%h")) != std::string::npos;) path.replace(at, 2, s.hostname);
  bool xml = path.size() >= 4 && path.compare(path.size() - 4, 4, ".xml") == 0;
  std::string text = xml ? toNcclXml(s) : toJson(s);
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  bool ok = static_cast<bool>(std::ofstream(tmp) << text) && std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    std::remove(tmp.c_str());
    TRELLIS_WARN(kTopo, "TRELLIS_TOPO_DUMP_FILE: cannot write '%s'", path.c_str());
  } else {
    TRELLIS_INFO(kTopo, "topology written to %s", path.c_str());
  }
}

static Result<System> detectLocalSystemImpl();

Result<System> detectLocalSystem() {
  Result<System> r = detectLocalSystemImpl();
  if (r) dumpDetected(r.value());
  return r;
}

static Result<System> detectLocalSystemImpl() {
  std::string file = kTopoFile.get();
  if (!file.empty()) return loadTopologyFile(file);
  std::string root = kSysfsRoot.get();
  Result<System> r = detectFromSysfs(root);
  if (!r) return r;
  System s = std::move(r.value());
  if (!root.empty()) {
    // A replayed tree: this machine's NVML and hwloc describe other hardware.
    for (int g : s.ofKind(NodeKind::kGpu)) {
      s.nodes[g].degraded = true;
      s.nodes[g].note += (s.nodes[g].note.empty() ? "" : "; ") + std::string("NVLink unknown: replayed sysfs tree");
    }
    return s;
  }
  TRELLIS_TRY(addHwlocCpuFacts(s));
  TRELLIS_TRY(addNvmlFacts(s));
  TRELLIS_TRY(addCudaDeviceIds(s));
  return s;
}

}  // namespace trellis::topo
