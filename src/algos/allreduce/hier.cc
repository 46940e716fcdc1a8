// Hierarchical AllReduce (topology-aware).
// Steps: (1) inside each node, a ring reduce-scatter over shared memory: slot j of a node ends with
// the node's sum of its slices (hier.h: K slices, slot j owns a contiguous range); (2) across
// nodes, the ranks that own the same slice (one per node, on the same rail when the cluster is
// rail-optimized) all-reduce it: recursive doubling up to 64 KiB, ring above, nodes in leaf order;
// (3) inside each node, a ring all-gather of the slices.
// Bytes per rank on the network: 2(N-1)/N * S/L for N nodes of L ranks (each rail's NIC carries
// 1/L of the data; a flat ring puts 2(n-1)/n * S through every rank's link, and ranks sharing a NIC
// share that); intra-node 2(L-1)/L * S over shared memory. Latency: 2(L-1) intra-node hops plus
// the inter-node algorithm's. Wins whenever nodes hold several ranks and the network, not memory,
// is the bottleneck; with one rank per node it is the inter-node algorithm alone.
// Uneven nodes: K = the largest node's rank count; a slot of a smaller node owns several slices
// and takes part in each of their groups, in slice order on every rank (no cycle, no deadlock).
#include "algos/hier.h"

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

namespace {
constexpr size_t kInnerRdMaxBytes = 64 * 1024;
constexpr size_t kInnerRdFewNodesMaxBytes = 256 * 1024;
constexpr int kFewNodes = 8;
constexpr size_t kInnerRabenseifnerMaxBytes = 1 << 20;

Status innerAllreduce(Exec& sub, const CollArgs& args) {
  const size_t bytes = args.count * dtypeSize(args.dtype);
  if (bytes <= kInnerRdMaxBytes || (bytes <= kInnerRdFewNodesMaxBytes && sub.nranks() <= kFewNodes))
    return allreduceRecursiveDoubling(sub, args);
  if (bytes <= kInnerRabenseifnerMaxBytes && sub.nranks() > 2)
    return allreduceRabenseifner(sub, args);
  return allreduceRing(sub, args);
}
}  // namespace

Status allreduceHier(Exec& exec, const CollArgs& args) {
  const Hierarchy h = makeHierarchy(exec);
  const size_t es = dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  const int node = h.myNode(), L = h.local(node);
  auto elem = [&](int slice) { return blockOffset(args.count, h.K, slice); };
  // (1) Node-local reduce-scatter of the slot ranges, into recv.
  std::vector<Segments> sets(L);
  for (int j = 0; j < L; ++j) {
    size_t b = elem(h.sliceBegin(node, j)), e = elem(h.sliceBegin(node, j + 1));
    sets[j] = {{b, e - b}};
  }
  TRELLIS_TRY(ringReduceScatterSegs(exec, h.slots[node], h.mySlot(), sets, args.send, recv, nullptr,
                                    args.dtype, args.op));
  // (2) Per run of slices with the same owners on every node, an AllReduce among those owners.
  if (h.nnodes > 1) {
    const int first = h.sliceBegin(node, h.mySlot()), end = h.sliceBegin(node, h.mySlot() + 1);
    for (int s = first; s < end;) {
      std::vector<int> group = h.sliceGroup(s);
      int t = s + 1;
      while (t < end && h.sliceGroup(t) == group) ++t;
      const size_t b = elem(s), cnt = elem(t) - b;
      s = t;
      if (cnt == 0 || group.size() < 2) continue;
      GroupExec sub(exec, group);
      CollArgs inner = args;
      inner.send = recv + b * es;
      inner.recv = recv + b * es;
      inner.count = cnt;
      TRELLIS_TRY(innerAllreduce(sub, inner));
    }
  }
  // (3) Node-local all-gather.
  return ringAllGatherSegs(exec, h.slots[node], h.mySlot(), sets, recv, es);
}

}  // namespace trellis::algos
