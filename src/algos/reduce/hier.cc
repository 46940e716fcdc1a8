// Hierarchical Reduce (topology-aware).
// Steps: (1) inside each node, a ring reduce-scatter of the slot ranges over shared memory (hier.h:
// K slices, slot j owns a contiguous range); (2) the ranks that own the same slices (one per node,
// the same rail on a rail-optimized cluster) reduce them to the owner on the root's node with a
// pipelined binomial tree; (3) inside the root's node, the owners send their finished ranges to the
// root.
// Bytes per rank on the network: about S/L per tree edge instead of S for a flat tree: every rail
// carries 1/L of the message. Wins for medium and large messages when nodes hold several ranks.
#include "algos/hier.h"

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reduceHier(Exec& exec, const CollArgs& args) {
  const Hierarchy h = makeHierarchy(exec);
  const int me = exec.rank(), node = h.myNode(), L = h.local(node), rootNode = h.nodeOf[args.root];
  const size_t es = dtypeSize(args.dtype);
  if (exec.nranks() == 1) {
    copyIfDistinct(args.recv, args.send, args.count * es);
    return Status::ok();
  }
  // Partial sums build up in the root's output, elsewhere in scratch.
  char* work =
      me == args.root
          ? static_cast<char*>(args.recv)
          : static_cast<char*>(exec.scratch(kScratchHier, std::max<size_t>(1, args.count * es)));
  auto elem = [&](int slice) { return blockOffset(args.count, h.K, slice); };
  auto range = [&](int nd, int j) {
    size_t b = elem(h.sliceBegin(nd, j)), e = elem(h.sliceBegin(nd, j + 1));
    return std::make_pair(b, e - b);
  };
  std::vector<Segments> sets(L);
  for (int j = 0; j < L; ++j) sets[j] = {range(node, j)};
  // (1) Node-local reduce-scatter.
  TRELLIS_TRY(ringReduceScatterSegs(exec, h.slots[node], h.mySlot(), sets, args.send, work, nullptr,
                                    args.dtype, args.op));
  // (2) Across nodes, per run of slices with the same owners, to the owner on the root's node.
  if (h.nnodes > 1) {
    int rootPos = 0;
    for (size_t i = 0; i < h.nodeOrder.size(); ++i)
      if (h.nodeOrder[i] == rootNode) rootPos = static_cast<int>(i);
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
      inner.send = inner.recv = work + b * es;
      inner.count = cnt;
      inner.root = rootPos;
      TRELLIS_TRY(reduceBinomial(sub, inner));
    }
  }
  // (3) Gather the finished ranges to the root.
  if (node != rootNode || L == 1) return Status::ok();
  if (me != args.root) {
    auto [b, c] = range(node, h.mySlot());
    return sendRecv(exec, args.root, work + b * es, c * es, -1, nullptr, 0);
  }
  std::deque<Request> reqs;
  for (int j = 0; j < L; ++j) {
    int peer = h.slots[node][j];
    if (peer == me) continue;
    auto [b, c] = range(node, j);
    reqs.emplace_back();
    TRELLIS_TRY(exec.irecv(peer, work + b * es, c * es, &reqs.back()));
  }
  return waitDeque(exec, reqs);
}

}  // namespace trellis::algos
