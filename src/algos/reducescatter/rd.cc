// ReduceScatter for small messages: a recursive-doubling AllReduce of the whole input into
// scratch (algos/allreduce/recursive_doubling.cc: log2(n) exchanges, +2 when n is not a power of
// two), then each rank copies its own block out. Every exchange carries the whole input (n blocks)
// instead of the ring's one block per step, so it pays only where the ring's n-1 dependent hops
// cost more than the extra bytes: small blocks on more than 2 ranks.
#include <cstring>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reducescatterRd(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  if (n == 1) {
    copyIfDistinct(args.recv, args.send, block);
    return Status::ok();
  }
  // The AllReduce uses slot kScratchAlgo for what it receives; the whole result goes in the next.
  char* all = static_cast<char*>(exec.scratch(kScratchAlgo + 1, static_cast<size_t>(n) * block));
  CollArgs a = args;
  a.coll = Coll::kAllReduce;
  a.recv = all;
  a.count = args.count * static_cast<size_t>(n);
  TRELLIS_TRY(allreduceRecursiveDoubling(exec, a));
  if (block > 0) std::memcpy(args.recv, all + static_cast<size_t>(r) * block, block);
  return Status::ok();
}

}  // namespace trellis::algos
