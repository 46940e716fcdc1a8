// Rail-aligned AlltoAll (PXN-style, topology-aware).
// Steps: (1) data for a rank on another node first moves inside the node, over shared memory, to
// the local rank on the destination's rail (its proxy, Hierarchy::proxy); blocks for ranks of the
// same node go straight to them; (2) each proxy sends every destination it serves, rail to rail,
// the blocks of all its node's ranks (one message per block, received in place; its own blocks
// leave at once, the others as soon as they have arrived).
// Bytes per rank on the network: the same (n-L)/n * S as pairwise exchange, but every flow stays on
// one rail (no traffic through the spine between rails) and each NIC carries its own rail's share;
// intra-node (L-1)/L of the remote data crosses shared memory once. Wins on rail-optimized fabrics
// where rails meet only above the leaves; with one rank per node it is pairwise exchange.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/hier.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status alltoallRail(Exec& exec, const CollArgs& args) {
  const Hierarchy h = makeHierarchy(exec);
  const int n = exec.nranks(), me = exec.rank(), node = h.myNode(), L = h.local(node);
  const size_t block = args.count * dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv + me * block, send + me * block, block);
  if (n == 1) return Status::ok();
  const std::vector<int>& here = h.slots[node];
  std::vector<int> served;  // remote ranks this rank forwards to, in rank order
  for (int d = 0; d < n; ++d)
    if (h.nodeOf[d] != node && h.proxy(node, d) == me) served.push_back(d);
  char* stage = static_cast<char*>(
      exec.scratch(kScratchHierStage, std::max<size_t>(1, served.size() * L * block)));
  std::deque<Request> reqs;
  auto post = [&](bool isSend, int peer, const void* p) {
    reqs.emplace_back();
    return isSend ? exec.isend(peer, p, block, &reqs.back())
                  : exec.irecv(peer, const_cast<void*>(p), block, &reqs.back());
  };
  // Receives from other nodes' proxies first, so their data lands in place as it comes.
  // From each proxy: its own block first, then its node's others in slot order.
  for (int other : h.nodeOrder) {
    if (other == node) continue;
    int p = h.proxy(other, me);
    TRELLIS_TRY(post(false, p, recv + p * block));
    for (int s : h.slots[other])
      if (s != p) TRELLIS_TRY(post(false, p, recv + s * block));
  }
  // Inside the node: each local pair exchanges its own blocks, then the blocks to forward.
  std::deque<Request> local;
  for (int q : here) {
    if (q == me) continue;
    local.emplace_back();
    TRELLIS_TRY(exec.irecv(q, recv + q * block, block, &local.back()));
    for (size_t i = 0; i < served.size(); ++i) {
      local.emplace_back();
      TRELLIS_TRY(exec.irecv(q, stage + (i * L + h.slotOf[q]) * block, block, &local.back()));
    }
  }
  for (int q : here) {
    if (q == me) continue;
    TRELLIS_TRY(post(true, q, send + q * block));
    for (int d = 0; d < n; ++d)
      if (h.nodeOf[d] != node && h.proxy(node, d) == q)
        TRELLIS_TRY(post(true, q, send + d * block));
  }
  // Across the network, rail to rail, for each destination served: this rank's own block at once,
  // then (once they have arrived) the other local ranks' in slot order.
  for (int d : served) TRELLIS_TRY(post(true, d, send + d * block));
  TRELLIS_TRY(waitDeque(exec, local));
  for (size_t i = 0; i < served.size(); ++i)
    for (int j = 0; j < L; ++j)
      if (here[j] != me) TRELLIS_TRY(post(true, served[i], stage + (i * L + j) * block));
  return waitDeque(exec, reqs);
}

}  // namespace trellis::algos
