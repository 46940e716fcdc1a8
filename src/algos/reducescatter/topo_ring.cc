// Topology-ordered ring ReduceScatter: n-1 steps around the cluster view's ring order (each node's
// ranks consecutive, nodes in leaf-group order, hops between nodes on one rail), adding the input
// as chunks arrive; the last step lands the rank's own block in the output. (n-1)/n * nS bytes per
// rank as the flat ring, but only N of the n hops cross the network. Partial sums live in a
// scratch copy of the whole input.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/hier.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reducescatterTopoRing(Exec& exec, const CollArgs& args) {
  const topo::ClusterView* v = exec.cluster();
  if (v == nullptr || v->nranks() != exec.nranks()) return reducescatterRing(exec, args);
  const std::vector<int> order = v->ringOrder();
  const size_t n = order.size(), es = dtypeSize(args.dtype), cnt = args.count;
  std::vector<Segments> sets(n);
  int pos = 0;
  for (size_t j = 0; j < n; ++j) {
    sets[j] = {{order[j] * cnt, cnt}};
    if (order[j] == exec.rank()) pos = static_cast<int>(j);
  }
  void* work = exec.scratch(kScratchHier, std::max<size_t>(1, n * cnt * es));
  return ringReduceScatterSegs(exec, order, pos, sets, args.send, work, args.recv, args.dtype,
                               args.op);
}

}  // namespace trellis::algos
