// tuner::Shape: everything the cost model knows about where the ranks are and what connects
// them, as a small plain struct. Built from a communicator's host grouping (shapeFromHosts), from
// a uniform description (uniformShape: the CLI's flags), or from a cluster fabric file plus a node
// topology (shape_fabric.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tuner/constants.h"

namespace trellis::tuner {

/// Cost of one kind of path between two ranks.
struct PathCost {
  double latencyS = 0;       ///< one small message, one way
  double bytesPerS = 0;      ///< wire bandwidth of one endpoint per direction (0: no wire limit)
  double sendCpuPerByte = 0; ///< sender CPU seconds per byte (0 for DMA / RDMA / single-copy pull)
  double recvCpuPerByte = 0; ///< receiver CPU seconds per byte
  double cpuPerMsg = 0;      ///< CPU seconds per message on each side
  double eagerMaxBytes = 0;  ///< messages below this cost an extra sender copy (shm ring slots)
  double rendezvousMinBytes = 0;  ///< messages from this size complete only when the receiver has
                                  ///< read them (0: never) ...
  double handshakeS = 0;          ///< ... each such message then costs this on the step's critical
                                  ///< path (the reader is woken, reads, tells the sender)
  double streamBps = 0;      ///< ceiling of one stream / connection (0: none); channels multiply it
};

enum class IntraKind { kShm, kTcp, kNvLink };
enum class NetKind { kNone, kTcp, kRdma };
const char* intraKindName(IntraKind k);
const char* netKindName(NetKind k);

struct Shape {
  // --- where the ranks are
  std::vector<int> nodeOfRank;  ///< node index of each rank (nodes numbered 0..nodes-1)
  std::vector<int> railOfRank;  ///< NIC (rail) each rank sends from on its node
  std::vector<int> ringOrder;   ///< the order ring algorithms visit ranks (empty: rank order)
  int railsPerNode = 1;         ///< compute NICs per node
  int nodesPerLeaf = 0;         ///< nodes under one leaf switch (per rail); 0: all nodes
  std::vector<int> groupOfNode; ///< leaf group of each node (empty: node / nodesPerLeaf)
  double spineOversub = 1;      ///< leaf downlink : uplink bandwidth (2 = 2:1 oversubscribed)
  bool railOptimized = true;    ///< NIC k of every node of a leaf group on that group's rail-k leaf
  bool direct = false;          ///< ranks of one node read each other's memory (single copy)
  // --- what the paths cost
  IntraKind intraKind = IntraKind::kShm;
  NetKind netKind = NetKind::kNone;
  PathCost intra;               ///< between ranks of one node
  PathCost net;                 ///< NIC to NIC under one leaf (per NIC)
  double switchHopS = 0;        ///< each further switch hop
  double directReadBps = 0;     ///< direct algorithms: a rank reading a peer's memory
  // --- compute
  int coresPerNode = 0;         ///< cores the ranks of a node share (0: one per rank / DMA engines)
  bool cpuDriven = true;        ///< data movement inside a node costs the ranks' CPU time
  double reduceBps = 0;         ///< reduction by one rank (output bytes / s)
  double copyBps = 0;           ///< local copy by one rank
  double memBps = 0;            ///< memory traffic of one node (0: not limited)
  double wakeS = 0;             ///< per step when a node has more ranks than cores
  double callS = 0;             ///< per call (checks, lookup, launch)
  double cacheBytes = 0;        ///< a rank's buffers up to this stay cached between calls (0: no cache model)
  double cacheSpeedup = 1;      ///< CPU byte rates there, over the table's
  double streamBytes = 0;       ///< beyond this the buffers stream from shared memory (0: never) ...
  double streamFactor = 1;      ///< ... at this fraction of the table's rates

  int nranks() const { return static_cast<int>(nodeOfRank.size()); }
  int nodes() const;
  /// Ranks on each node.
  std::vector<int> ranksPerNode() const;
  /// True when some node has more ranks than cores (and data movement needs CPU).
  bool oversubscribed() const;
  /// Checks sizes and ranges; the message names the bad field.
  std::string validate() const;
  /// One line: "2 nodes x 4 ranks, 1 rail, shm + tcp, direct".
  std::string describe() const;
};

/// Ranks of one node given per node: node i holds ranksPerNode[i] consecutive ranks (node-major
/// numbering, the order topology-aware placement gives); rank k of a node uses rail
/// k * rails / ranksOnNode.
void placeNodeMajor(Shape* s, const std::vector<int>& ranksPerNode);

/// Ranks that outnumber their node's cores yield instead of spinning: sets the shared-memory
/// latency accordingly (shm.yield_latency_s or shm.latency_s). Call after changing the placement.
void applyWaitPolicy(Shape* s, const Constants& c);

/// Path costs of each kind from the constants.
PathCost shmPath(const Constants& c);
PathCost tcpLoopbackPath(const Constants& c);
PathCost tcpNetPath(const Constants& c, double nicBps);
PathCost rdmaPath(const Constants& c);
PathCost nvlinkPath(const Constants& c);

/// A communicator's shape from its host grouping: `hostOfRank[r]` identifies rank r's host,
/// `coresOfRank[r]` the cores rank r's process may use (the smallest per host is used). Inside a
/// host: shared memory unless `intraTcp`; across hosts: TCP. `direct`: single-copy reads allowed.
Shape shapeFromHosts(const std::vector<uint64_t>& hostOfRank, const std::vector<int>& coresOfRank,
                     bool intraTcp, bool direct, const Constants& c);

/// A uniform cluster for the CLI and the tests: `nodes` x `ranksPerNode` GPUs or CPU ranks.
struct UniformSpec {
  int nodes = 1;
  int ranksPerNode = 1;
  int rails = 1;
  int nodesPerLeaf = 0;
  double spineOversub = 1;
  bool railOptimized = true;
  bool gpu = false;        ///< NVLink inside nodes and RDMA across (else shm + TCP)
  bool intraTcp = false;   ///< CPU ranks talking TCP inside a node too
  bool direct = false;     ///< CPU ranks: single-copy reads inside a node
  int coresPerNode = 0;
  double nicBps = 0;       ///< 0: the table's default for the kind
};
Shape uniformShape(const UniformSpec& spec, const Constants& c);

/// The same ranks scattered as a scheduler that ignores the topology might number them: rank
/// order is a seeded random permutation of the node-major order (each rank keeps its own rail).
Shape scrambled(const Shape& s, uint64_t seed);

}  // namespace trellis::tuner
