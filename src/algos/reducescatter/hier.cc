// Hierarchical ReduceScatter (topology-aware).
// Steps: (1) inside each node, a ring reduce-scatter over shared memory in which slot j collects
// the node's partial sums of the blocks it forwards: its own and those of the ranks of other nodes
// it is the proxy for (Hierarchy::proxy: the rank on the destination's rail); (2) each rank sends
// every such partial to its destination across the network, rail to rail, and adds the N-1
// partials it receives (one per other node, in node order) to its node's own.
// Bytes per rank on the network: (N-1) * count (its proxied blocks out, its own partials in), where
// a flat ring sends (n-1) * count per rank with n = N*L; intra-node (L-1)/L * n * count over shared
// memory. Wins when nodes hold several ranks; latency 2 phases plus L-1 intra-node hops.
// Uneven nodes: proxies exist for every destination on every node, so any layout works.
#include "algos/hier.h"

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reducescatterHier(Exec& exec, const CollArgs& args) {
  const Hierarchy h = makeHierarchy(exec);
  const int n = exec.nranks(), me = exec.rank(), node = h.myNode(), L = h.local(node);
  const size_t es = dtypeSize(args.dtype), cnt = args.count;
  std::vector<Segments> sets(L);
  std::vector<int> remoteDests;  // remote ranks this rank forwards partial sums to
  for (int d = 0; d < n; ++d) {
    int p = h.proxy(node, d);
    sets[h.slotOf[p]].push_back({d * cnt, cnt});
    if (p == me && h.nodeOf[d] != node) remoteDests.push_back(d);
  }
  char* work = static_cast<char*>(exec.scratch(kScratchHier, std::max<size_t>(1, n * cnt * es)));
  TRELLIS_TRY(ringReduceScatterSegs(exec, h.slots[node], h.mySlot(), sets, args.send, work, nullptr,
                                    args.dtype, args.op));
  std::deque<Request> sends;
  for (int d : remoteDests)
    TRELLIS_TRY(postChunkedSends(exec, d, work + d * cnt * es, cnt, es, &sends));
  char* recv = static_cast<char*>(args.recv);
  const char* acc = work + me * cnt * es;
  for (int other : h.nodeOrder) {
    if (other == node) continue;
    TRELLIS_TRY(sendRecvReduce(exec, -1, nullptr, 0, h.proxy(other, me), recv, acc, cnt, args.dtype,
                               args.op));
    acc = recv;
  }
  if (h.nnodes == 1) copyIfDistinct(recv, acc, cnt * es);
  return waitDeque(exec, sends);
}

}  // namespace trellis::algos
