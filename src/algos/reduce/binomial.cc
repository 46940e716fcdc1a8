// Binomial-tree Reduce: each rank reduces each child's message chunk by chunk as it arrives (the
// reduction overlaps the transfer), then sends its accumulator to its parent. log2(n) hops; every
// internal rank receives the message once per child. The root accumulates in its output buffer.
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reduceBinomial(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const size_t bytes = args.count * es;
  const char* send = static_cast<const char*>(args.send);
  if (n == 1) {
    copyIfDistinct(args.recv, send, bytes);
    return Status::ok();
  }
  const BinomialTree tree = binomialTree(r, n, args.root);
  const int parent = tree.parent;
  const std::vector<int>& children = tree.children;
  if (children.empty())  // a leaf sends its input as it is, chunked as the parent receives it
    return sendRecvReduce(exec, parent, send, args.count, -1, nullptr, nullptr, 0, args.dtype, args.op);
  // Accumulator: the output buffer at the root, scratch elsewhere.
  char* acc = r == args.root ? static_cast<char*>(args.recv) : static_cast<char*>(exec.scratch(kScratchAlgo, bytes));
  const char* a = send;
  for (size_t c = 0; c < children.size(); ++c) {
    TRELLIS_TRY(sendRecvReduce(exec, -1, nullptr, 0, children[c], acc, a, args.count, args.dtype, args.op));
    a = acc;
  }
  if (parent >= 0) TRELLIS_TRY(sendRecvReduce(exec, parent, acc, args.count, -1, nullptr, nullptr, 0, args.dtype, args.op));
  return Status::ok();
}

}  // namespace trellis::algos
