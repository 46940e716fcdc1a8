// `trellis-topo cluster`: the cluster fabric (ibnetdiscover output or an operator cluster file) in
// the formats schedulers read, and one host's place in it. Also the --fabric forms of `slurm`
// (topology.conf) and `k8s` (Kueue, Volcano, labels).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace trellis::tools {

struct FabricArgs {
  std::string input;        ///< auto-detected: cluster JSON when it starts with '{', else ibnetdiscover
  std::string ibnet;        ///< --ibnetdiscover FILE
  std::string clusterFile;  ///< --cluster-file FILE
  std::string format = "summary";
  std::string host;         ///< --host NAME: print that host's placement instead
  std::string output;
  std::string domain = "trellis.dev/";
  std::string topologyName = "trellis-fabric";
  std::string kueueApiVersion = "kueue.x-k8s.io/v1alpha1";
  std::vector<int> blockSizes;
  bool given() const { return !input.empty() || !ibnet.empty() || !clusterFile.empty(); }
};

/// Adds `cluster` to `app`; the arguments land in `args`.
CLI::App* addClusterCommand(CLI::App& app, FabricArgs& args);
/// Adds --ibnetdiscover/--cluster-file (and the emitter options) to another subcommand.
void addFabricSourceOptions(CLI::App* sub, FabricArgs& args);
/// Runs with args.format; returns the process exit code (0 ok, 2 error).
int runCluster(const FabricArgs& args);

}  // namespace trellis::tools
