// Bruck AllGather: ceil(log2 n) steps for any n. A rank keeps the blocks it has gathered in a
// scratch buffer in rotated order (its own first: slot i holds block r+i). At the step of distance
// d it sends its first min(d, n-d) slots to rank r-d and receives as many from rank r+d, which are
// blocks r+d.. and land at slot d; a final pass copies the slots to their places in the output.
// Bytes per rank: (n-1)/n * nS on the wire plus two local copies of nS; latency: ceil(log2 n)
// hops against the ring's n-1. Wins for small messages on more than 2 ranks.
#include <cstring>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherBruck(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  if (n == 1) {
    copyIfDistinct(recv, args.send, block);
    return Status::ok();
  }
  char* tmp = static_cast<char*>(exec.scratch(kScratchAlgo, static_cast<size_t>(n) * block));
  if (block > 0) std::memcpy(tmp, args.send, block);  // before anything is written: send may be in recv
  for (int d = 1; d < n; d <<= 1) {
    const size_t bytes = static_cast<size_t>(std::min(d, n - d)) * block;
    TRELLIS_TRY(sendRecv(exec, (r - d + n) % n, tmp, bytes, (r + d) % n, tmp + static_cast<size_t>(d) * block, bytes));
  }
  for (int i = 0; i < n && block > 0; ++i)
    std::memcpy(recv + static_cast<size_t>((r + i) % n) * block, tmp + static_cast<size_t>(i) * block, block);
  return Status::ok();
}

}  // namespace trellis::algos
