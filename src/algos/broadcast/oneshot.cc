// One-shot (flat) Broadcast for small messages: the root sends the buffer to every other rank at
// once; nobody forwards. One hop instead of the binomial tree's log2(n), and no rank waits for a
// relay that has to be scheduled first (back-to-back small broadcasts with more ranks than cores).
// The root sends (n-1) S: only for small S.
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status broadcastOneShot(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t bytes = args.count * dtypeSize(args.dtype);
  char* buf = static_cast<char*>(args.recv);
  if (r != args.root) return n == 1 ? Status::ok() : sendRecv(exec, -1, nullptr, 0, args.root, buf, bytes);
  copyIfDistinct(buf, args.send, bytes);
  std::vector<Request> reqs(static_cast<size_t>(n - 1));
  std::vector<Request*> ptrs;
  ptrs.reserve(reqs.size());
  for (int s = 1; s < n; ++s) {
    TRELLIS_TRY(exec.isend((r + s) % n, buf, bytes, &reqs[ptrs.size()]));
    ptrs.push_back(&reqs[ptrs.size()]);
  }
  return exec.waitAll(ptrs.data(), ptrs.size());
}

}  // namespace trellis::algos
