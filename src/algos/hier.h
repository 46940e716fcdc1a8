// Machinery shared by the topology-aware algorithms (hier_*, topo_ring, rail): the node/slot
// structure taken from the cluster view, an Exec over a sub-group of ranks (so the flat algorithms
// run unchanged among the ranks of one rail), and ring reduce-scatter / all-gather over arbitrary
// sets of segments (uneven slot ranges, several blocks per position).
//
// Slots: the ranks of a node sorted by (rail, local rank) (ClusterView::slots); slot j of a node
// works with slot j of every other node, so on a rail-optimized cluster equal slots share a rail.
// Slices: the data is cut into K = (most ranks on a node) slices; on a node with L ranks slot j
// owns the contiguous slices [floor(jK/L), floor((j+1)K/L)). With equal nodes slot j owns slice j;
// with unequal nodes every slice still has exactly one owner per node, so "the ranks that own
// slice s" is a group with one rank per node. Without a cluster view every rank is its own node.
#pragma once

#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

#include "algos/exec.h"
#include "trellis/trellis.h"

namespace trellis::algos {

/// Scratch slots of the topology-aware algorithms (the flat ones they call use lower slots).
constexpr int kScratchHier = 5;
constexpr int kScratchHierStage = 6;

struct Hierarchy {
  int me = 0;
  int nnodes = 1;
  std::vector<std::vector<int>> slots;  // per node: its ranks in slot order
  std::vector<int> nodeOrder;           // nodes by leaf group, then first rank
  std::vector<int> nodeOf, slotOf;      // per rank
  std::vector<int> rail;                // per rank (-1 unknown)
  int K = 1;                            // slices

  int myNode() const { return nodeOf[me]; }
  int mySlot() const { return slotOf[me]; }
  int local(int node) const { return static_cast<int>(slots[node].size()); }
  /// First slice of slot j on `node` (j == local(node) gives K).
  int sliceBegin(int node, int j) const { return j * K / local(node); }
  /// The slot of `node` that owns slice s.
  int ownerSlot(int node, int s) const;
  /// The rank of `node` that owns slice s.
  int owner(int node, int s) const { return slots[node][ownerSlot(node, s)]; }
  /// The ranks owning slice s, one per node in nodeOrder.
  std::vector<int> sliceGroup(int s) const;
  /// The rank of `node` that forwards data to or from rank d of another node: the one on d's rail
  /// (spread over several on that rail), else the slot of d's slot number modulo the node's size.
  /// For d on `node`, d itself.
  int proxy(int node, int d) const;
};

/// The structure of `exec`'s communicator (every rank its own node when exec.cluster() is null).
Hierarchy makeHierarchy(const Exec& exec);

/// An Exec over a sub-group of the base's ranks: rank i of the group is base rank members[i].
/// Scratch, chunking and waits are the base's.
class GroupExec final : public Exec {
 public:
  GroupExec(Exec& base, std::vector<int> members);
  int rank() const override { return pos_; }
  int nranks() const override { return static_cast<int>(members_.size()); }
  Status isend(int peer, const void* data, size_t bytes, Request* req) override {
    return base_.isend(members_[peer], data, bytes, req);
  }
  Status irecv(int peer, void* data, size_t bytes, Request* req) override {
    return base_.irecv(members_[peer], data, bytes, req);
  }
  Status waitAll(Request* const* reqs, size_t n) override { return base_.waitAll(reqs, n); }
  void* scratch(int slot, size_t bytes) override { return base_.scratch(slot, bytes); }
  size_t chunkBytes() const override { return base_.chunkBytes(); }

 private:
  Exec& base_;
  std::vector<int> members_;
  int pos_ = -1;
};

/// Element ranges (offset, count) one position of a ring owns.
using Segments = std::vector<std::pair<size_t, size_t>>;

/// Ring reduce-scatter among `group` (base ranks; this rank at position `pos`): position j ends
/// with sets[j] fully reduced over the group. Reads `in`; partial sums go to `work` at the same
/// element offsets (work may alias in). The last step writes this rank's own set to `out` packed
/// in segment order when out is not null, else to work. Every position must pass the same sets.
Status ringReduceScatterSegs(Exec& exec, const std::vector<int>& group, int pos,
                             const std::vector<Segments>& sets, const void* in, void* work,
                             void* out, trellisDataType_t dtype, trellisRedOp_t op);

/// Ring all-gather among `group`: position j contributes sets[j] of `buf` (at those element
/// offsets) and ends with every set.
Status ringAllGatherSegs(Exec& exec, const std::vector<int>& group, int pos,
                         const std::vector<Segments>& sets, void* buf, size_t elemSize);

/// Posts `count` elements to `to` cut exactly as sendRecvReduce's receiving side expects (one
/// message per exec.chunkBytes()); the requests are appended to reqs (a deque: they stay put).
Status postChunkedSends(Exec& exec, int to, const void* data, size_t count, size_t elemSize,
                        std::deque<Request>* reqs);
/// Waits for every request in reqs.
Status waitDeque(Exec& exec, std::deque<Request>& reqs);

}  // namespace trellis::algos
