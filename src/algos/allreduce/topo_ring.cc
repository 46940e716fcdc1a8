// Topology-ordered ring AllReduce: the ring allreduce (allreduce/ring.cc) over the ranks in the
// cluster view's ring order: each node's ranks consecutive (their hops stay in shared memory),
// nodes in leaf-group order, every other node reversed so each hop between nodes leaves and enters
// on the same rail. Steps and bytes are the flat ring's, 2(n-1) hops and 2(n-1)/n * S per rank, but
// only N of the n hops cross the network and none crosses rails through the spine (for an even
// number of nodes). Wins over a ring in launch order when ranks were placed without regard to
// nodes; the hierarchical algorithm moves fewer bytes over the network when nodes hold several
// ranks.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/hier.h"

namespace trellis::algos {

Status allreduceTopoRing(Exec& exec, const CollArgs& args) {
  const topo::ClusterView* v = exec.cluster();
  if (v == nullptr || v->nranks() != exec.nranks()) return allreduceRing(exec, args);
  GroupExec ring(exec, v->ringOrder());
  return allreduceRing(ring, args);
}

}  // namespace trellis::algos
