#include "show.h"

#include <cstdio>
#include <map>

#include "topo/emit.h"
#include "topo/inventory.h"
#include "topo/paths.h"

namespace trellis::topo {

namespace {

std::string describe(const Node& n) {
  char b[320];
  switch (n.kind) {
    case NodeKind::kCpu:
      std::snprintf(b, sizeof b, "CPU/NUMA %d %s cpus %s", n.numa, n.arch.c_str(), cpuListFromMask(n.affinity).c_str());
      return b;
    case NodeKind::kGpu:
      std::snprintf(b, sizeof b, "GPU %s%s", n.busId.c_str(), n.sm > 0 ? (" sm" + std::to_string(n.sm)).c_str() : "");
      return b;
    case NodeKind::kNic: {
      std::string ports;
      for (const NetPort& p : n.ports) {
        ports += " " + p.name;
        if (!p.netdev.empty() && p.netdev != p.name) ports += "/" + p.netdev;
        if (p.speedMbps) ports += " " + std::to_string(p.speedMbps / 1000) + "G";
        if (!p.linkLayer.empty()) ports += " " + p.linkLayer;
        if (!p.state.empty()) ports += " " + p.state;
      }
      std::snprintf(b, sizeof b, "NIC %s vendor %04x%s", n.busId.empty() ? "-" : n.busId.c_str(), n.vendor, ports.c_str());
      return b;
    }
    case NodeKind::kNvSwitch: return "NVSwitch " + n.busId;
    case NodeKind::kPciSwitch: {
      double bw = upstreamGBps(n);
      std::snprintf(b, sizeof b, "PCIe switch %s%s", n.busId.c_str(),
                    bw > 0 ? (" " + std::to_string(static_cast<int>(bw)) + " GB/s").c_str() : "");
      return b;
    }
    default: return "PCI " + n.busId;
  }
}

void printTree(const System& s, int id, int depth) {
  const Node& n = s.nodes[id];
  std::printf("  %*s%s%s\n", depth * 2, "", describe(n).c_str(), n.degraded ? ("  [" + n.note + "]").c_str() : "");
  for (int c : n.children) printTree(s, c, depth + 1);
}

void printInventory(const System& s, const std::string& root) {
  int cores = 0, pus = 0;
  std::string model;
  for (int c : s.ofKind(NodeKind::kCpu)) {
    cores += s.nodes[c].cores;
    pus += s.nodes[c].pus;
    if (model.empty()) model = s.nodes[c].cpuModel;
  }
  std::printf("CPUs: %d threads, %d cores, %zu NUMA node(s)%s%s\n", pus, cores, s.ofKind(NodeKind::kCpu).size(),
              model.empty() ? "" : ", ", model.c_str());
  for (int c : s.ofKind(NodeKind::kCpu))
    std::printf("  NUMA %d: cpus %s (%d cores, %d threads)\n", s.nodes[c].numa,
                cpuListFromMask(s.nodes[c].affinity).c_str(), s.nodes[c].cores, s.nodes[c].pus);
  std::vector<NetInterface> nets = listNetInterfaces(root);
  std::printf("Network interfaces: %zu\n", nets.size());
  for (const NetInterface& n : nets)
    std::printf("  %-12s %-8s %-14s %s%s\n", n.name.c_str(), n.state.c_str(), n.busId.empty() ? "(virtual)" : n.busId.c_str(),
                n.speedMbps ? (std::to_string(n.speedMbps) + " Mb/s").c_str() : "speed unknown", n.rdma ? " RDMA" : "");
  std::vector<PciFunction> pci = listPciFunctions(root);
  std::printf("PCIe functions: %zu\n", pci.size());
  if (pci.size() <= 16) {
    for (const PciFunction& f : pci)
      std::printf("  %s  %04x:%04x  %-16s numa %-2d %s\n", f.busId.c_str(), f.vendor, f.device, pciClassName(f.pciClass),
                  f.numa, f.driver.c_str());
  } else {  // one screen: counts by class
    std::map<std::string, int> byClass;
    for (const PciFunction& f : pci) ++byClass[pciClassName(f.pciClass)];
    for (auto& [c, k] : byClass) std::printf("  %3d %s\n", k, c.c_str());
  }
}

std::string nameOf(const System& s, int id, size_t index, bool gpu) {
  if (gpu) return "GPU" + std::to_string(index);
  const Node& n = s.nodes[id];
  return n.ports.empty() ? "NIC" + std::to_string(index) : n.ports[0].name;
}

void printMatrix(const System& s) {
  std::vector<int> gpus = s.ofKind(NodeKind::kGpu), nics = s.ofKind(NodeKind::kNic);
  std::vector<int> devs = gpus;
  devs.insert(devs.end(), nics.begin(), nics.end());
  if (devs.empty()) return;
  std::vector<std::string> names;
  for (size_t i = 0; i < devs.size(); ++i)
    names.push_back(nameOf(s, devs[i], i < gpus.size() ? i : i - gpus.size(), i < gpus.size()));
  std::printf("\n%-12s", "");
  for (auto& nm : names) std::printf("%-8s", nm.substr(0, 7).c_str());
  std::printf("NUMA\n");
  for (size_t i = 0; i < devs.size(); ++i) {
    std::printf("%-12s", names[i].substr(0, 11).c_str());
    for (size_t j = 0; j < devs.size(); ++j) {
      Path p = pathBetween(s, devs[i], devs[j]);
      std::string cell = i == j ? "X" : pathKindName(p.kind);
      if (p.kind == PathKind::kNvLink || p.kind == PathKind::kNvSwitch) cell = "NV" + std::to_string(p.nvlinks);
      std::printf("%-8s", cell.c_str());
    }
    std::printf("%d\n", s.nodes[devs[i]].numa);
  }
  if (!gpus.empty()) {
    Rails rails = computeRails(s);
    std::printf("\nRails (GPU -> NIC):");
    for (size_t g = 0; g < gpus.size(); ++g) {
      int nic = rails.gpuNic[g];
      std::printf(" GPU%zu->%s", g, nic < 0 ? "none" : (s.nodes[nic].ports.empty() ? s.nodes[nic].busId : s.nodes[nic].ports[0].name).c_str());
    }
    std::printf("\n");
  }
  std::printf("Legend: X self, NV# # NVLinks (direct or through NVSwitches), PIX one PCIe switch, PXB several\n"
              "PCIe switches, PHB a PCIe host bridge, NODE host bridges of one NUMA node, SYS across NUMA nodes.\n");
}

}  // namespace

void showSystem(const System& s, const std::string* inventoryRoot) {
  std::printf("host %s (source: %s)\n", s.hostname.empty() ? "?" : s.hostname.c_str(), sourceName(s.source));
  if (inventoryRoot) printInventory(s, *inventoryRoot);
  std::printf("GPUs: %zu, NICs: %zu, NVSwitches: %zu, PCIe switches: %zu\n", s.ofKind(NodeKind::kGpu).size(),
              s.ofKind(NodeKind::kNic).size(), s.ofKind(NodeKind::kNvSwitch).size(), s.ofKind(NodeKind::kPciSwitch).size());
  std::printf("Topology tree:\n");
  for (const Node& n : s.nodes)
    if (n.parent < 0 && n.kind != NodeKind::kNvSwitch) printTree(s, n.id, 0);
  printMatrix(s);
}

}  // namespace trellis::topo
