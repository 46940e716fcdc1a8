// One-shot ReduceScatter for small messages: every rank sends block q of its input to rank q, all
// at once, and reduces the n contributions to its own block in rank order. One step with n-1
// messages of S/n each way, against the ring's n-1 dependent steps and rd's log2(n) exchanges of
// the whole input.
#include <cstring>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reducescatterOneShot(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  if (n == 1) {
    copyIfDistinct(args.recv, send, block);
    return Status::ok();
  }
  // Slot q holds rank q's contribution to our block; ours is copied in (recv may be our block).
  char* in = static_cast<char*>(exec.scratch(kScratchAlgo, static_cast<size_t>(n) * block));
  AllPeers peers;
  TRELLIS_TRY(peers.post(
      exec, block, [&](int p) { return in + static_cast<size_t>(p) * block; },
      [&](int p) { return send + static_cast<size_t>(p) * block; }));
  if (block > 0) std::memcpy(in + static_cast<size_t>(r) * block, send + static_cast<size_t>(r) * block, block);
  TRELLIS_TRY(peers.wait(exec));
  reduce2(args.recv, in, in + block, args.count, args.dtype, args.op);
  for (int q = 2; q < n; ++q) reduce2(args.recv, args.recv, in + static_cast<size_t>(q) * block, args.count, args.dtype, args.op);
  return Status::ok();
}

}  // namespace trellis::algos
