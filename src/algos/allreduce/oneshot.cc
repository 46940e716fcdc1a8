// One-shot AllReduce for small messages: every rank sends its whole input to every other rank at
// once and reduces the n inputs itself, in rank order (so every rank computes the same bits).
// One step with n-1 messages in each direction instead of recursive doubling's log2(n) dependent
// exchanges: (n-1) S bytes out per rank, (n-1) S reduced. Pays where a dependent step is
// expensive (more ranks than cores: each step waits for a peer to be scheduled) and S is small.
#include <cstring>
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allreduceOneShot(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t bytes = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  if (n == 1) {
    copyIfDistinct(recv, args.send, bytes);
    return Status::ok();
  }
  // Every rank's input in slot `rank` of the scratch (ours copied in: send may be recv).
  char* in = static_cast<char*>(exec.scratch(kScratchAlgo, static_cast<size_t>(n) * bytes));
  std::vector<Request> reqs(2 * static_cast<size_t>(n - 1));
  std::vector<Request*> ptrs;
  ptrs.reserve(reqs.size());
  size_t k = 0;
  for (int s = 1; s < n; ++s) {  // receives first, then sends, each in a rotated order
    const int p = (r + s) % n;
    TRELLIS_TRY(exec.irecv(p, in + static_cast<size_t>(p) * bytes, bytes, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
  }
  for (int s = 1; s < n; ++s) {
    const int p = (r - s + n) % n;
    TRELLIS_TRY(exec.isend(p, args.send, bytes, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
  }
  if (bytes > 0) std::memcpy(in + static_cast<size_t>(r) * bytes, args.send, bytes);
  TRELLIS_TRY(exec.waitAll(ptrs.data(), ptrs.size()));
  reduce2(recv, in, in + bytes, args.count, args.dtype, args.op);
  for (int q = 2; q < n; ++q) reduce2(recv, recv, in + static_cast<size_t>(q) * bytes, args.count, args.dtype, args.op);
  return Status::ok();
}

}  // namespace trellis::algos
