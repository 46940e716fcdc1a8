// trellis-topo: this machine's (or a file's) topology for people and schedulers.
//   show                 summary, tree and an nvidia-smi-topo-style matrix of GPUs and NICs
//   dump --format F      json | nccl-xml | dot
//   slurm                gres.conf GPU lines with Cores= and NVSwitch-aware Links=
//   k8s                  node labels and DRA device attributes
//   diff A B             differences between two topologies (exit 1 when they differ)
//   cluster              the cluster fabric from ibnetdiscover output or a cluster file: summary, json,
//                        Slurm topology.conf (tree/block), Kueue Topology, Volcano HyperNodes, labels;
//                        `slurm --topology tree|block` and `k8s --kind kueue|volcano|labels` with
//                        --ibnetdiscover/--cluster-file are the same outputs under the scheduler's name
//   tune                 the tuner's choices per collective and size on a described cluster (a
//                        simulation by the cost model; see docs/TUNER.md)
// Every subcommand takes --input FILE (Trellis JSON, NCCL XML, hwloc XML or nvidia-smi topo -m text,
// detected from the content) or --sysfs-root DIR (replay a saved sysfs tree); without either it
// detects this machine. Exit codes: 0 success, 1 differences (diff), 2 errors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "cluster.h"
#include "show.h"
#include "tune.h"
#include "topo/diff.h"
#include "topo/emit.h"
#include "topo/nccl_xml.h"
#include "topo/sysfs.h"

using namespace trellis::topo;  // NOLINT

namespace {

int fail(const trellis::Status& st) {
  std::fprintf(stderr, "trellis-topo: %s\n", st.message().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trellis-topo: the node topology (PCIe, NVLink, NICs, rails) for people and schedulers"};
  std::string input, sysfsRoot, format = "json", output, diffA, diffB;
  app.require_subcommand(1);
  auto addSource = [&](CLI::App* sub) {
    sub->add_option("--input", input,
                    "read this file instead of detecting (Trellis JSON, NCCL XML, hwloc XML, nvidia-smi topo -m)");
    sub->add_option("--sysfs-root", sysfsRoot, "detect from a sysfs tree below this directory");
  };
  CLI::App* showCmd = app.add_subcommand("show", "print a summary, the tree and the device matrix");
  addSource(showCmd);
  CLI::App* dumpCmd = app.add_subcommand("dump", "write the topology in a machine-readable format");
  addSource(dumpCmd);
  dumpCmd->add_option("--format", format, "json, nccl-xml or dot")->check(CLI::IsMember({"json", "nccl-xml", "dot"}));
  dumpCmd->add_option("-o,--output", output, "file to write (default: stdout)");
  EmitOptions emit;
  CLI::App* slurmCmd = app.add_subcommand("slurm", "Slurm gres.conf GPU lines (Cores= and NVSwitch-aware Links=)");
  addSource(slurmCmd);
  slurmCmd->add_option("--node-name", emit.nodeName, "NodeName= (default: the host name)");
  slurmCmd->add_option("--gpu-type", emit.gpuType, "Type= (default: sm<NN>)");
  trellis::tools::FabricArgs fab;
  std::string slurmForm = "tree", k8sKind = "labels";
  trellis::tools::addFabricSourceOptions(slurmCmd, fab);
  slurmCmd->add_option("--topology", slurmForm, "with a fabric: topology.conf form, tree (default) or block")
      ->check(CLI::IsMember({"tree", "block"}));
  CLI::App* k8sCmd = app.add_subcommand("k8s", "Kubernetes node labels and DRA device attributes");
  addSource(k8sCmd);
  k8sCmd->add_option("--domain", emit.labelDomain, "label domain (default trellis.dev)");
  trellis::tools::addFabricSourceOptions(k8sCmd, fab);
  k8sCmd->add_option("--kind", k8sKind, "with a fabric: labels (default), kueue or volcano")
      ->check(CLI::IsMember({"labels", "kueue", "volcano"}));
  CLI::App* clusterCmd = trellis::tools::addClusterCommand(app, fab);
  CLI::App* diffCmd = app.add_subcommand("diff", "compare two topologies (files in any supported format)");
  diffCmd->add_option("A", diffA, "first topology file")->required();
  diffCmd->add_option("B", diffB, "second topology file (or --input)");
  diffCmd->add_option("--input", input, "the second topology, when B is not given");
  trellis::tools::TuneArgs tuneArgs;
  CLI::App* tuneCmd = trellis::tools::addTuneCommand(app, &tuneArgs);
  CLI11_PARSE(app, argc, argv);

  if (clusterCmd->parsed()) return trellis::tools::runCluster(fab);
  if (slurmCmd->parsed() && (!fab.ibnet.empty() || !fab.clusterFile.empty())) {
    fab.format = "slurm-" + slurmForm;
    return trellis::tools::runCluster(fab);
  }
  if (k8sCmd->parsed() && (!fab.ibnet.empty() || !fab.clusterFile.empty())) {
    fab.format = k8sKind == "labels" ? "k8s-labels" : k8sKind;
    return trellis::tools::runCluster(fab);
  }
  if (tuneCmd->parsed()) return trellis::tools::runTune(tuneArgs);

  if (diffCmd->parsed()) {
    if (diffB.empty()) diffB = input;
    auto a = loadTopologyFile(diffA);
    if (!a) return fail(a.status());
    trellis::Result<System> b = diffB.empty() ? detectLocalSystem() : loadTopologyFile(diffB);
    if (!b) return fail(b.status());
    std::vector<std::string> d = diffSystems(a.value(), b.value());
    for (const std::string& line : d) std::printf("%s\n", line.c_str());
    if (d.empty()) std::printf("no differences\n");
    return d.empty() ? 0 : 1;
  }
  trellis::Result<System> sys = !input.empty()       ? loadTopologyFile(input)
                                : !sysfsRoot.empty() ? detectFromSysfs(sysfsRoot)
                                                     : detectLocalSystem();
  if (!sys) return fail(sys.status());
  if (showCmd->parsed()) {
    std::string root = sysfsRoot;
    showSystem(sys.value(), input.empty() && sys->source == Source::kSysfs ? &root : nullptr);
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
  std::string text = format == "json" ? toJson(sys.value()) : format == "dot" ? toDot(sys.value()) : toNcclXml(sys.value());
  if (!text.empty() && text.back() != '\n') text += "\n";
  if (output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else if (!(std::ofstream(output) << text)) {
    return fail(trellis::invalidArgument("cannot write '%s'", output.c_str()));
  }
  return 0;
}
