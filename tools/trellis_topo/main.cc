// trellis-topo: this machine's (or a file's) topology for people and schedulers.
//   show                 tree and an nvidia-smi-topo-style matrix of GPUs and NICs
//   dump --format F      json | nccl-xml
//   slurm                gres.conf GPU lines with Cores= and NVSwitch-aware Links=
//   k8s                  node labels and DRA device attributes
// Every subcommand takes --input FILE (Trellis JSON or NCCL XML, detected from the content) or
// --sysfs-root DIR (replay a saved sysfs tree); without either it detects this machine.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <string>

#include "topo/emit.h"
#include "topo/nccl_xml.h"
#include "topo/paths.h"
#include "topo/sysfs.h"

using namespace trellis::topo;  // NOLINT

namespace {

std::string describe(const System& s, const Node& n) {
  char b[256];
  switch (n.kind) {
    case NodeKind::kCpu:
      snprintf(b, sizeof b, "CPU/NUMA %d %s%s%s", n.numa, n.arch.c_str(), n.affinity.empty() ? "" : " affinity ",
               n.affinity.c_str());
      return b;
    case NodeKind::kGpu:
      snprintf(b, sizeof b, "GPU %s%s", n.busId.c_str(), n.sm > 0 ? (" sm" + std::to_string(n.sm)).c_str() : "");
      return b;
    case NodeKind::kNic: {
      std::string ports;
      for (const NetPort& p : n.ports)
        ports += " " + p.name + (p.speedMbps ? "(" + std::to_string(p.speedMbps / 1000) + "G" + (p.state.empty() ? "" : "," + p.state) + ")" : "");
      snprintf(b, sizeof b, "NIC %s vendor %04x%s", n.busId.empty() ? "-" : n.busId.c_str(), n.vendor, ports.c_str());
      return b;
    }
    case NodeKind::kNvSwitch: return "NVSwitch " + n.busId;
    case NodeKind::kPciSwitch: {
      double bw = pcieGBps(n.linkSpeed, n.linkWidth);
      snprintf(b, sizeof b, "PCIe switch %s%s", n.busId.c_str(), bw > 0 ? (" " + std::to_string(static_cast<int>(bw)) + " GB/s").c_str() : "");
      return b;
    }
    default: return "PCI " + n.busId;
  }
  (void)s;
}

void printTree(const System& s, int id, int depth) {
  const Node& n = s.nodes[id];
  std::printf("%*s%s%s\n", depth * 2, "", describe(s, n).c_str(), n.degraded ? ("  [" + n.note + "]").c_str() : "");
  for (int c : n.children) printTree(s, c, depth + 1);
}

void show(const System& s) {
  std::printf("host %s (source: %s)\n", s.hostname.c_str(), sourceName(s.source));
  for (const Node& n : s.nodes)
    if (n.parent < 0 && n.kind != NodeKind::kNvSwitch) printTree(s, n.id, 0);
  std::vector<int> devs = s.ofKind(NodeKind::kGpu);
  for (int n : s.ofKind(NodeKind::kNic)) devs.push_back(n);
  if (devs.empty()) {
    std::printf("no GPUs or NICs found\n");
    return;
  }
  std::vector<std::string> names;
  auto gpus = s.ofKind(NodeKind::kGpu);
  for (size_t i = 0; i < gpus.size(); ++i) names.push_back("GPU" + std::to_string(i));
  for (int n : s.ofKind(NodeKind::kNic))
    names.push_back(s.nodes[n].ports.empty() ? "NIC" + std::to_string(names.size() - gpus.size()) : s.nodes[n].ports[0].name);
  std::printf("\n%-10s", "");
  for (auto& nm : names) std::printf("%-8s", nm.substr(0, 7).c_str());
  std::printf("CPU/NUMA\n");
  for (size_t i = 0; i < devs.size(); ++i) {
    std::printf("%-10s", names[i].substr(0, 9).c_str());
    for (size_t j = 0; j < devs.size(); ++j) {
      Path p = pathBetween(s, devs[i], devs[j]);
      std::string cell = i == j ? "X" : pathKindName(p.kind);
      if (p.kind == PathKind::kNvLink) cell = "NV" + std::to_string(p.nvlinks);
      std::printf("%-8s", cell.c_str());
    }
    std::printf("%d\n", s.nodes[devs[i]].numa);
  }
  Rails rails = computeRails(s);
  if (!gpus.empty()) {
    std::printf("\nrails (GPU -> NIC):");
    for (size_t g = 0; g < gpus.size(); ++g) {
      int nic = rails.gpuNic[g];
      std::printf(" GPU%zu->%s", g, nic < 0 ? "none" : (s.nodes[nic].ports.empty() ? s.nodes[nic].busId : s.nodes[nic].ports[0].name).c_str());
    }
    std::printf("\n");
  }
  std::printf("\nLegend: X self, NV# NVLink x#, NVS through NVSwitch, PIX one PCIe switch, PXB several PCIe switches,\n"
              "PHB PCIe host bridge, NODE host bridges of one NUMA node, SYS across NUMA nodes.\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trellis-topo: the node topology (PCIe, NVLink, NICs, rails) for people and schedulers"};
  std::string input, sysfsRoot, format = "json", output;
  app.require_subcommand(1);
  auto addSource = [&](CLI::App* sub) {
    sub->add_option("--input", input, "read this topology file (Trellis JSON or NCCL XML) instead of detecting");
    sub->add_option("--sysfs-root", sysfsRoot, "detect from a sysfs tree below this directory");
  };
  CLI::App* showCmd = app.add_subcommand("show", "print the tree and the device matrix");
  addSource(showCmd);
  CLI::App* dumpCmd = app.add_subcommand("dump", "write the topology in a machine-readable format");
  addSource(dumpCmd);
  dumpCmd->add_option("--format", format, "json or nccl-xml")->check(CLI::IsMember({"json", "nccl-xml"}));
  dumpCmd->add_option("-o,--output", output, "file to write (default: stdout)");
  EmitOptions emit;
  CLI::App* slurmCmd = app.add_subcommand("slurm", "Slurm gres.conf GPU lines (Cores= and NVSwitch-aware Links=)");
  addSource(slurmCmd);
  slurmCmd->add_option("--node-name", emit.nodeName, "NodeName= (default: the host name)");
  slurmCmd->add_option("--gpu-type", emit.gpuType, "Type= (default: sm<NN>)");
  CLI::App* k8sCmd = app.add_subcommand("k8s", "Kubernetes node labels and DRA device attributes");
  addSource(k8sCmd);
  k8sCmd->add_option("--domain", emit.labelDomain, "label domain (default trellis.dev)");
  CLI11_PARSE(app, argc, argv);

  trellis::Result<System> sys = !input.empty() ? loadTopologyFile(input)
                                : !sysfsRoot.empty() ? detectFromSysfs(sysfsRoot) : detectLocalSystem();
  if (!sys) {
    std::fprintf(stderr, "trellis-topo: %s\n", sys.status().message().c_str());
    return 1;
  }
  if (showCmd->parsed()) {
    show(sys.value());
    return 0;
  }
  if (slurmCmd->parsed()) {
    std::fputs(toSlurmGres(sys.value(), emit).c_str(), stdout);
    return 0;
  }
  if (k8sCmd->parsed()) {
    std::fputs(toK8sLabels(sys.value(), emit).c_str(), stdout);
    return 0;
  }
  std::string text = format == "json" ? toJson(sys.value()) : toNcclXml(sys.value());
  if (output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (!text.empty() && text.back() != '\n') std::printf("\n");
  } else {
    std::ofstream(output) << text;
  }
  return 0;
}
