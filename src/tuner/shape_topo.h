// Shapes from topology descriptions, for `trellis-topo tune`: a node topology file (GPUs, NICs,
// NVLink) and a cluster fabric (ibnetdiscover output or a trellis-cluster file: hosts, rails,
// leaf groups, oversubscription).
#pragma once

#include "core/status.h"
#include "topo/cluster_view.h"
#include "topo/fabric/fabric.h"
#include "topo/model.h"
#include "tuner/shape.h"

namespace trellis::tuner {

/// A communicator's shape from its cluster view: nodes, each rank's rail, leaf groups and the
/// view's ring order (what the topology-aware algorithms use); path costs as shapeFromHosts. A rank
/// striping over several rails is modelled on its first.
Shape shapeFromCluster(const topo::ClusterView& v, const std::vector<int>& coresOfRank, bool intraTcp, bool direct,
                       const Constants& c);

/// What one node's topology says: GPUs (the ranks), compute NICs (rails) and their speed, the
/// GPU-to-GPU bandwidth, cores.
struct NodeFacts {
  int gpus = 0;
  int rails = 0;          ///< compute NICs (0: none found)
  double nicBps = 0;      ///< fastest compute NIC port, bytes/s (0: unknown)
  double gpuPathBps = 0;  ///< slowest GPU pair's path bandwidth, bytes/s (0: unknown)
  bool nvlink = false;    ///< every GPU pair talks over NVLink / NVSwitch
  int cores = 0;
};
NodeFacts nodeFacts(const topo::System& s);

/// What a fabric says about the cluster.
struct FabricFacts {
  int nodes = 0;          ///< named hosts
  int rails = 0;          ///< rails (leaves per leaf group on a rail-optimized fabric)
  bool railOptimized = false;
  std::vector<int> groupOfNode;  ///< leaf group of each host, hosts ordered by (group, name)
  int nodesPerLeaf = 0;   ///< most hosts in one leaf group
  double spineOversub = 1;///< the worst leaf's host bandwidth over its uplink bandwidth
  double nicBps = 0;      ///< host link rate (line rate x payload share), bytes/s
};
Result<FabricFacts> fabricFacts(const topo::fabric::Fabric& f, const topo::fabric::Analysis& a, const Constants& c);

/// Reads a fabric file: a trellis-cluster JSON file or ibnetdiscover output (told apart by content).
Result<topo::fabric::Fabric> loadFabricFile(const std::string& path);

/// What this rank's own files say about the network, for a communicator spanning nodes: the
/// fastest compute NIC's port speed (`topoFile`, else TRELLIS_TOPO_FILE, else detection) and the
/// spine oversubscription of the fabric in TRELLIS_FABRIC_FILE. Unknown facts are 0; `note` says
/// why. Each rank's facts are combined across ranks by the caller.
struct NetFacts {
  double nicBps = 0;
  double spineOversub = 0;
  std::string note;
};
NetFacts localNetFacts(const std::string& topoFile, const Constants& c);

}  // namespace trellis::tuner
