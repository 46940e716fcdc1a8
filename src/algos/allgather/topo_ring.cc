// Topology-ordered ring AllGather: n-1 steps around the cluster view's ring order (each node's
// ranks consecutive, nodes in leaf-group order, hops between nodes on one rail), every block
// landing straight in the output at its rank's place. (n-1)/n * nS bytes per rank as the flat ring,
// but only N of the n hops cross the network.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/hier.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherTopoRing(Exec& exec, const CollArgs& args) {
  const topo::ClusterView* v = exec.cluster();
  if (v == nullptr || v->nranks() != exec.nranks()) return allgatherRing(exec, args);
  const std::vector<int> order = v->ringOrder();
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv + exec.rank() * block, args.send, block);
  std::vector<Segments> sets(order.size());
  int pos = 0;
  for (size_t j = 0; j < order.size(); ++j) {
    sets[j] = {{static_cast<size_t>(order[j]), 1}};
    if (order[j] == exec.rank()) pos = static_cast<int>(j);
  }
  return ringAllGatherSegs(exec, order, pos, sets, recv, block);
}

}  // namespace trellis::algos
