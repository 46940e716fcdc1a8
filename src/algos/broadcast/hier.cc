// Hierarchical Broadcast (topology-aware).
// Steps: (1) inside the root's node the root scatters the slot ranges (hier.h: K slices, slot j
// owns a contiguous range) to its node's ranks over shared memory; (2) the ranks that own the same
// slices (one per node, the same rail on a rail-optimized cluster) broadcast them from the owner on
// the root's node: a pipelined binomial tree, or scatter + all-gather above 512 KiB on more than 3
// nodes; (3) inside every node, a ring all-gather of the slot ranges.
// Bytes per rank on the network: about S/L per tree edge (binomial) or 2S/(L N) (scatter +
// all-gather) instead of S per edge of a flat tree: every rail carries 1/L of the message. Wins for
// medium and large messages when nodes hold several ranks.
#include "algos/hier.h"

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

namespace {
constexpr size_t kInnerTreeMaxBytes = 512 * 1024;

// Position of `node` in the inter-node groups (they follow nodeOrder).
int groupPos(const Hierarchy& h, int node) {
  for (size_t i = 0; i < h.nodeOrder.size(); ++i)
    if (h.nodeOrder[i] == node) return static_cast<int>(i);
  return 0;
}
}  // namespace

Status broadcastHier(Exec& exec, const CollArgs& args) {
  const Hierarchy h = makeHierarchy(exec);
  const int me = exec.rank(), node = h.myNode(), L = h.local(node), rootNode = h.nodeOf[args.root];
  const size_t es = dtypeSize(args.dtype);
  char* buf = static_cast<char*>(args.recv);
  if (me == args.root) copyIfDistinct(buf, args.send, args.count * es);
  if (exec.nranks() == 1) return Status::ok();
  auto elem = [&](int slice) { return blockOffset(args.count, h.K, slice); };
  auto range = [&](int nd, int j) {
    size_t b = elem(h.sliceBegin(nd, j)), e = elem(h.sliceBegin(nd, j + 1));
    return std::make_pair(b, e - b);
  };
  // (1) Scatter inside the root's node.
  if (node == rootNode && L > 1) {
    if (me == args.root) {
      std::deque<Request> reqs;
      for (int j = 0; j < L; ++j) {
        int peer = h.slots[node][j];
        if (peer == me) continue;
        auto [b, c] = range(node, j);
        reqs.emplace_back();
        TRELLIS_TRY(exec.isend(peer, buf + b * es, c * es, &reqs.back()));
      }
      TRELLIS_TRY(waitDeque(exec, reqs));
    } else {
      auto [b, c] = range(node, h.mySlot());
      TRELLIS_TRY(sendRecv(exec, -1, nullptr, 0, args.root, buf + b * es, c * es));
    }
  }
  // (2) Across nodes, per run of slices with the same owners.
  if (h.nnodes > 1) {
    const int rootPos = groupPos(h, rootNode);
    const int first = h.sliceBegin(node, h.mySlot()), end = h.sliceBegin(node, h.mySlot() + 1);
    for (int s = first; s < end;) {
      std::vector<int> group = h.sliceGroup(s);
      int t = s + 1;
      while (t < end && h.sliceGroup(t) == group) ++t;
      const size_t b = elem(s), cnt = elem(t) - b;
      s = t;
      if (cnt == 0) continue;
      GroupExec sub(exec, group);
      CollArgs inner = args;
      inner.send = inner.recv = buf + b * es;
      inner.count = cnt;
      inner.root = rootPos;
      const bool tree = group.size() <= 3 || cnt * es <= kInnerTreeMaxBytes;
      TRELLIS_TRY(tree ? broadcastBinomial(sub, inner) : broadcastScatterAllgather(sub, inner));
    }
  }
  // (3) All-gather inside every node.
  std::vector<Segments> sets(L);
  for (int j = 0; j < L; ++j) sets[j] = {range(node, j)};
  return ringAllGatherSegs(exec, h.slots[node], h.mySlot(), sets, buf, es);
}

}  // namespace trellis::algos
