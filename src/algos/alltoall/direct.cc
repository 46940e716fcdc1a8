// Direct (node-local) AlltoAll: each rank copies block `rank` of every peer's input straight into
// its output (one copy per byte, all ranks in parallel), then a barrier keeps inputs alive.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status alltoallDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv + r * block, send + r * block, block);
  if (n == 1) return Status::ok();
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, send, recv, &bufs));
  for (int k = 1; k < n && block > 0; ++k) {
    int p = (r + k) % n;
    TRELLIS_TRY(exec.readPeer(p, bufs[p].send + r * block, recv + p * block, block));
  }
  return barrier(exec);
}

}  // namespace trellis::algos
