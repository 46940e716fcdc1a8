// Hierarchical AllGather (topology-aware).
// Steps: (1) each rank sends its block across the network to its proxy on every other node (the
// rank there on its rail, Hierarchy::proxy), all at once; (2) inside each node, a ring all-gather
// over shared memory in which slot j contributes its own block and those it received as proxy.
// Bytes per rank on the network: (N-1) * S out and as much in, S the block size (a flat ring moves
// (n-1) * S through every rank, n = N*L); intra-node (L-1)/L * n * S over shared memory. Wins when
// nodes hold several ranks; any layout works (every rank has a proxy on every node).
#include "algos/hier.h"

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherHier(Exec& exec, const CollArgs& args) {
  const Hierarchy h = makeHierarchy(exec);
  const int n = exec.nranks(), me = exec.rank(), node = h.myNode(), L = h.local(node);
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv + me * block, args.send, block);
  std::vector<Segments> sets(L);
  std::deque<Request> reqs;
  for (int d = 0; d < n; ++d) {
    int p = h.proxy(node, d);
    sets[h.slotOf[p]].push_back({static_cast<size_t>(d), 1});
    if (p == me && h.nodeOf[d] != node) {
      reqs.emplace_back();
      TRELLIS_TRY(exec.irecv(d, recv + d * block, block, &reqs.back()));
    }
  }
  for (int other : h.nodeOrder) {
    if (other == node) continue;
    reqs.emplace_back();
    TRELLIS_TRY(exec.isend(h.proxy(other, me), recv + me * block, block, &reqs.back()));
  }
  TRELLIS_TRY(waitDeque(exec, reqs));
  return ringAllGatherSegs(exec, h.slots[node], h.mySlot(), sets, recv, block);
}

}  // namespace trellis::algos
