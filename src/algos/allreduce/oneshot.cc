// One-shot AllReduce for small messages: every rank sends its whole input to every other rank at
// once and reduces the n inputs itself, in rank order (so every rank computes the same bits).
// One step with n-1 messages in each direction instead of recursive doubling's log2(n) dependent
// exchanges: (n-1) S bytes out per rank, (n-1) S reduced. Pays where a dependent step is
// expensive (more ranks than cores: each step waits for a peer to be scheduled) and S is small.
#include <cstring>

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
  AllPeers peers;
  TRELLIS_TRY(peers.post(
      exec, bytes, [&](int p) { return in + static_cast<size_t>(p) * bytes; }, [&](int) { return args.send; }));
  if (bytes > 0) std::memcpy(in + static_cast<size_t>(r) * bytes, args.send, bytes);
  TRELLIS_TRY(peers.wait(exec));
  reduce2(recv, in, in + bytes, args.count, args.dtype, args.op);
  for (int q = 2; q < n; ++q) reduce2(recv, recv, in + static_cast<size_t>(q) * bytes, args.count, args.dtype, args.op);
  return Status::ok();
}

}  // namespace trellis::algos
