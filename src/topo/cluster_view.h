// The cluster view: for every rank of a communicator, its node, local rank, rail (the NIC the
// topology assigns it) and, when a fabric description places its host, its leaf switch; for every
// node, its ranks in local order and its rail NICs. Plain data, built from one digest per rank
// (what each rank detected about its own node), so it can be tested without a communicator.
//
// At communicator creation each rank summarises its node (LocalTopology), packs it into a
// fixed-size RankDigest, the digests are all-gathered over the bootstrap and every rank builds the
// same ClusterView from them. build() also checks that rails agree across nodes (same number of
// rail NICs, same NIC name on each rail, every NIC cabled to a leaf of its own rail) and records a
// warning naming the node and NIC for each disagreement.
//
// How a rank gets its rails (assignRails): a node's compute NICs are numbered as rails in the
// order the topology lists them (topo::computeRails). With at least as many ranks as rail NICs on
// the node, local rank i takes the NIC of GPU i (mod the GPU count) when the topology has GPUs
// (the emulated GPUs of CPU-only nodes are the ranks bound to them), else rail i mod R. With fewer
// ranks than rail NICs, local rank i takes every rail r with r mod L == i and stripes its traffic
// over them, so no NIC is left idle.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "topo/model.h"

namespace trellis::topo {

namespace fabric {
struct HostPlacement;
}

/// Rails (compute NICs) a node may have in the cluster view; more are dropped with a warning.
constexpr int kMaxRails = 16;
/// GPUs per node whose rail is recorded.
constexpr int kMaxDigestGpus = 32;

/// One node as one of its ranks sees it.
struct LocalTopology {
  bool known = false;             ///< a topology was detected or loaded for this node
  std::string host;               ///< host name (the topology's, else gethostname)
  std::vector<std::string> nics;  ///< rail r's NIC name (first port's name: "mlx5_0", "eth1")
  std::vector<std::string>
      netdevs;                      ///< rail r's kernel interface ("" when it has none); local only
  std::vector<int> gpuRail;         ///< rail of GPU i (topology order), -1 when it has no NIC
  std::vector<int> gpuNuma;         ///< NUMA node of GPU i (-1 unknown)
  std::vector<int> nicNuma;         ///< NUMA node of rail r's NIC (-1 unknown)
  std::vector<std::string> leaves;  ///< leaf switch rail r's NIC is cabled to ("" unknown)
  std::vector<int> leafRail;        ///< rail that leaf serves in the fabric (-1 unknown)
  std::string leafGroup;            ///< scalable unit of the host in the fabric ("" unknown)
  std::string spineGroup;           ///< spine group above it ("" unknown)
  std::vector<std::string> notes;   ///< what was dropped or could not be matched (for warnings)
};

/// Rails and GPU pairing of `s` (topo::computeRails); `host` defaults to s.hostname.
LocalTopology summarize(const System& s);
/// This node as detected: `file` when given, else TRELLIS_TOPO_FILE, else detection of this
/// machine; plus leaf switches when TRELLIS_FABRIC_FILE names the fabric (ibnetdiscover output or a
/// cluster file) and lists this host. A topology or fabric file that cannot be read is an error;
/// failed detection gives an unknown topology with a note saying why.
Result<LocalTopology> detectLocalTopology(const std::string& file = "");
/// Adds leaf switches from a fabric placement of this host: NIC r is matched by HCA name, else by
/// HCA index == r.
void addPlacement(LocalTopology* t, const fabric::HostPlacement& p);

/// The fixed-size record all-gathered at communicator creation (names truncated to their field).
struct RankDigest {
  static constexpr uint32_t kMagic = 0x54474944;  // "DIGT"
  static constexpr uint16_t kVersion = 2;
  uint32_t magic;
  uint16_t version;
  uint16_t flags;  // bit 0: topology known
  uint64_t hostId;
  int16_t nrails;
  int16_t ngpus;
  int16_t leafRail[kMaxRails];
  int16_t gpuRail[kMaxDigestGpus];
  int16_t gpuNuma[kMaxDigestGpus];
  int16_t nicNuma[kMaxRails];
  char host[64];
  char leafGroup[48];
  char spineGroup[48];
  char nic[kMaxRails][32];
  char leaf[kMaxRails][48];
};

RankDigest toDigest(uint64_t hostId, const LocalTopology& t);
/// Validates a digest received from a peer (untrusted bytes): magic, version, counts in range.
Result<LocalTopology> fromDigest(const RankDigest& d, int fromRank, uint64_t* hostId);

/// Rails used by local rank `localRank` of `localSize` on a node with `nrails` rail NICs (see the
/// file comment). Empty when the node has no rail NIC.
std::vector<int> assignRails(int localRank, int localSize, int nrails,
                             const std::vector<int>& gpuRail);

/// Where one rank is.
struct RankPlace {
  int node = -1;           ///< index into ClusterView::nodes
  int localRank = -1;      ///< among the ranks of its node, in rank order
  int rail = -1;           ///< its first rail (-1 unknown)
  std::vector<int> rails;  ///< every rail it uses (several: striped)
  std::string nic;         ///< NIC name of `rail` ("" unknown)
  int gpu = -1;            ///< its GPU (local rank mod the node's GPUs), -1 when the node has none
  int numa = -1;           ///< NUMA node of its GPU, else of its NIC (-1 unknown)
  std::string leaf;        ///< leaf switch of that NIC ("" unknown)
};

struct ClusterNode {
  uint64_t hostId = 0;
  std::vector<int> ranks;  ///< in local order (= rank order)
  LocalTopology topo;      ///< as its first rank described it
};

struct ClusterView {
  std::vector<RankPlace> ranks;       ///< indexed by rank
  std::vector<ClusterNode> nodes;     ///< in order of their first rank
  std::vector<std::string> warnings;  ///< rail inconsistencies, one line each

  /// Groups ranks by host id, assigns rails, places leaves and checks rail consistency.
  /// hostIds.size() == locals.size() == number of ranks.
  static ClusterView build(const std::vector<uint64_t>& hostIds,
                           const std::vector<LocalTopology>& locals);
  /// A described cluster without detection (tests, `trellis-topo tune`): node n has
  /// ranksPerNode[n] ranks (ranks numbered node by node) and `rails` rail NICs named "nic<r>".
  static ClusterView synthetic(const std::vector<int>& ranksPerNode, int rails);

  int nranks() const { return static_cast<int>(ranks.size()); }
  int nnodes() const { return static_cast<int>(nodes.size()); }
  int nodeOf(int rank) const { return ranks[rank].node; }
  int railOf(int rank) const { return ranks[rank].rail; }
  /// Largest and smallest number of ranks on a node.
  int maxLocal() const;
  int minLocal() const;
  /// Whether some rank has a known rail.
  bool railsKnown() const;
  /// Ranks of `node` sorted by (rail, local rank): slot j of a node works with slot j of the
  /// others in the hierarchical and rail-aligned algorithms, so equal slots share a rail.
  std::vector<int> slots(int node) const;
  /// Node indices ordered by leaf group (scalable unit), then by first rank.
  std::vector<int> nodeOrder() const;
  /// A ring over every rank: nodes in nodeOrder(), each node's ranks consecutive in slot order,
  /// every other node reversed so that each hop between nodes leaves and enters on the same rail.
  std::vector<int> ringOrder() const;
  /// A multi-line table (rank, node, host, local rank, rails, NIC, leaf) and the warnings.
  std::string describe() const;
  /// {"format": "trellis-cluster-view", "version": 1, "ranks": [...], "nodes": [...], "warnings":
  /// [...]}.
  std::string toJson() const;
};

}  // namespace trellis::topo
