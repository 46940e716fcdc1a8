// Binomial-tree Broadcast, chunked and pipelined: a rank forwards chunk i to its children as soon
// as it has it, so a large message streams down the tree. log2(n) hops; every non-leaf sends the
// message once per child. Wins for small and medium messages.
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status broadcastBinomial(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t bytes = args.count * dtypeSize(args.dtype);
  char* buf = static_cast<char*>(args.recv);
  if (r == args.root) copyIfDistinct(buf, args.send, bytes);
  if (n == 1) return Status::ok();
  const BinomialTree tree = binomialTree(r, n, args.root);
  const int parent = tree.parent;
  const std::vector<int>& children = tree.children;
  const size_t chunk = std::max<size_t>(1, exec.chunkBytes());
  const size_t nchunks = bytes == 0 ? 1 : (bytes + chunk - 1) / chunk;
  std::vector<Request> rreqs(parent >= 0 ? nchunks : 0);
  std::vector<Request> sreqs(nchunks * children.size());
  std::vector<Request*> sptrs(sreqs.size());
  auto len = [&](size_t i) { return bytes == 0 ? 0 : std::min(chunk, bytes - i * chunk); };
  if (parent >= 0)
    for (size_t i = 0; i < nchunks; ++i) TRELLIS_TRY(exec.irecv(parent, buf + i * chunk, len(i), &rreqs[i]));
  size_t k = 0;
  for (size_t i = 0; i < nchunks; ++i) {
    if (parent >= 0) TRELLIS_TRY(exec.wait(&rreqs[i]));
    // Farthest child first: it heads the largest subtree.
    for (size_t c = children.size(); c-- > 0;) {
      TRELLIS_TRY(exec.isend(children[c], buf + i * chunk, len(i), &sreqs[k]));
      sptrs[k] = &sreqs[k];
      ++k;
    }
  }
  return exec.waitAll(sptrs.data(), k);
}

}  // namespace trellis::algos
